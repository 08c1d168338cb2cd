/*
 * libFuzzer harness for the parsers that see hostile input before any
 * session exists: the wire layer's admission check (datagrams from unknown
 * peers) and the address parsers (command line, later bridge arguments).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/netaddr.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *str, host[NETADDR_HOST_MAX], scheme[16];
	uint16_t port;
	struct netaddr_cidr cidr;
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (wire_is_session_start(data, size)) {
		/* Only an INIT with vtag 0 and a sane chunk length is admitted. */
		assert(size >= 32);
		assert(get_u32be(data + 4) == 0 && data[12] == 1);
		assert(get_u16be(data + 14) <= size - 12);
	}

	str = malloc(size + 1);
	if (str == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	if (netaddr_parse_hostport(str, host, sizeof(host), &port, 0) == 0) {
		assert(port != 0 && strlen(host) > 0);
		(void)netaddr_from_numeric(host, port, &ss, &sslen);
	}
	if (netaddr_parse_url(str, scheme, sizeof(scheme), host, sizeof(host), &port) == 0)
		assert(strlen(scheme) > 0 && strlen(host) > 0);
	if (netaddr_parse_cidr(str, &cidr) == 0) {
		assert(cidr.family == AF_INET ? cidr.prefix <= 32 : cidr.prefix <= 128);
		if (netaddr_from_numeric("192.0.2.1", 80, &ss, &sslen) == 0)
			(void)netaddr_cidr_match(&cidr, (struct sockaddr *)&ss);
	}
	free(str);
	return 0;
}
