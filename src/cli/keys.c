/*
 * Server identity key files and `sctpt keygen`.
 *
 * The file is text, written with mode 0600:
 *   # comment lines
 *   private-key <base64 of the 32-byte X25519 private key>
 *   bridge-secret <base64 of the 16-byte secret clients get in cert=>
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "util/log.h"
#include "util/netaddr.h"
#include "util/portrange.h"
#include "util/sharelink.h"
#include "crypto/crypto.h"
#include "wire/handshake.h"

#define KEY_FILE_MAX 4096

static int b64_decode_exact(const char *s, uint8_t *out, size_t want)
{
	uint8_t buf[64];
	size_t n = strlen(s);
	int len;

	if (n == 0 || n > 60 || n % 4 != 0)
		return -1;
	len = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts '=' padding as zero bytes. */
	while (n > 0 && s[n - 1] == '=') {
		n--;
		len--;
	}
	if ((size_t)len != want)
		return -1;
	memcpy(out, buf, want);
	wc_wipe(buf, sizeof(buf));
	return 0;
}

int cli_key_save(const char *path, const struct wire_identity *id, int force,
                 char *err, size_t errlen)
{
	char priv[64], secret[32], text[256];
	int fd, n;
	FILE *f;

	EVP_EncodeBlock((unsigned char *)priv, id->priv, WC_KEY_LEN);
	EVP_EncodeBlock((unsigned char *)secret, id->cert.secret, WIRE_SECRET_LEN);
	n = snprintf(text, sizeof(text),
	             "# sctpt server identity: keep this file private\n"
	             "private-key %s\nbridge-secret %s\n", priv, secret);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(errno),
		         errno == EEXIST ? " (use --force to replace it)" : "");
		goto out;
	}
	(void)fchmod(fd, 0600);
	f = fdopen(fd, "w");
	if (f == NULL || fwrite(text, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		if (f == NULL)
			close(fd);
		n = -1;
	}
out:
	wc_wipe(priv, sizeof(priv));
	wc_wipe(text, sizeof(text));
	return fd < 0 || n < 0 ? -1 : 0;
}

int cli_key_load(const char *path, struct wire_identity *id, char *err, size_t errlen)
{
	char text[KEY_FILE_MAX + 1], *line, *save = NULL;
	uint8_t priv[WC_KEY_LEN], secret[WIRE_SECRET_LEN];
	int have_priv = 0, have_secret = 0, rc = -1, lineno = 0;
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
		log_warn("key file %s is readable by others; chmod 600 it", path);
	n = read(fd, text, KEY_FILE_MAX + 1);
	close(fd);
	if (n < 0 || n > KEY_FILE_MAX) {
		snprintf(err, errlen, "key file %s: %s", path, n < 0 ? strerror(errno) : "too large");
		goto out;
	}
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *val;

		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		val = strchr(line, ' ');
		if (val == NULL)
			goto bad;
		*val++ = '\0';
		if (strcmp(line, "private-key") == 0 && !have_priv)
			have_priv = b64_decode_exact(val, priv, sizeof(priv)) == 0;
		else if (strcmp(line, "bridge-secret") == 0 && !have_secret)
			have_secret = b64_decode_exact(val, secret, sizeof(secret)) == 0;
		else
			goto bad;
		if (!have_priv && !have_secret)
			goto bad;
	}
	if (!have_priv || !have_secret) {
		snprintf(err, errlen, "key file %s: needs private-key and bridge-secret lines", path);
		goto out;
	}
	if (wire_identity_from_priv(id, priv, secret) < 0) {
		snprintf(err, errlen, "key file %s: unusable private key", path);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "key file %s: malformed line %d", path, lineno);
out:
	wc_wipe(text, sizeof(text));
	wc_wipe(priv, sizeof(priv));
	wc_wipe(secret, sizeof(secret));
	return rc;
}

int cli_link_add_url(struct sharelink *link, const char *what, const char *url)
{
	char scheme[16], first[SHARELINK_HOST_MAX + 32];
	const char *given = url;
	struct sharelink_path *p;

	if (link->npaths >= SHARELINK_MAX_PATHS) {
		fprintf(stderr, "sctpt: at most %d paths in a share link\n", SHARELINK_MAX_PATHS);
		return -1;
	}
	p = &link->paths[link->npaths];
	memset(p, 0, sizeof(*p));
	{
		/* issue 16: udp://HOST:P1-P2, a port range (port hopping) */
		const char *colon = strrchr(url, ':'), *perr = "address too long";

		if (colon != NULL && strchr(colon, '-') != NULL) {
			if (portrange_parse(colon + 1, strlen(colon + 1), &p->port, &p->port_hi,
			                    &perr) < 0 || (size_t)(colon - url) >= sizeof(first)) {
				fprintf(stderr, "sctpt: bad %s '%s' (%s)\n", what, url, perr);
				return -1;
			}
			snprintf(first, sizeof(first), "%.*s:%u", (int)(colon - url), url,
			         (unsigned)p->port);
			url = first;
		}
	}
	if (netaddr_parse_url(url, scheme, sizeof(scheme), p->host, sizeof(p->host),
	                      &p->port) < 0 || p->port == 0 ||
	    (strcmp(scheme, "udp") != 0 && strcmp(scheme, "tcp") != 0) ||
	    !sharelink_host_ok(p->host)) {
		fprintf(stderr, "sctpt: bad %s '%s' (want udp://HOST:PORT or tcp://HOST:PORT, "
		        "HOST a name, an IPv4 address or [IPv6])\n", what, url);
		return -1;
	}
	p->tcp = strcmp(scheme, "tcp") == 0;
	if (p->tcp && p->port_hi != 0) {
		fprintf(stderr, "sctpt: bad %s '%s' (port ranges are for udp:// only)\n", what,
		        given);
		return -1;
	}
	for (unsigned i = 0; i < link->npaths; i++) {
		if (link->paths[i].tcp == p->tcp && link->paths[i].port == p->port &&
		    link->paths[i].port_hi == p->port_hi &&
		    strcmp(link->paths[i].host, p->host) == 0) {
			fprintf(stderr, "sctpt: %s '%s' given twice\n", what, url);
			return -1;
		}
	}
	link->npaths++;
	return 0;
}

void cli_link_path_url(const struct sharelink *link, unsigned i, char *buf, size_t len)
{
	const struct sharelink_path *p = &link->paths[i];
	int v6 = strchr(p->host, ':') != NULL;

	char range[8] = "";

	if (p->port_hi != 0)
		snprintf(range, sizeof(range), "-%u", (unsigned)p->port_hi);
	snprintf(buf, len, "%s://%s%s%s:%u%s", p->tcp ? "tcp" : "udp", v6 ? "[" : "", p->host,
	         v6 ? "]" : "", (unsigned)p->port, range);
}

static void keygen_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt keygen --key FILE [--force | --show]\n"
	"                    [--uri URL... [--name NAME] [--qr]]\n"
	"\n"
	"Creates a server identity (an X25519 key pair and a bridge secret) in FILE,\n"
	"mode 0600, and prints the cert= value clients need on stdout.  Only clients\n"
	"given that value can get any answer from the server.\n"
	"\n"
	"  --key FILE   where the private key is written (required)\n"
	"  --force      replace an existing FILE\n"
	"  --show       print the cert= of an existing FILE instead\n"
	"  --uri URL    also print a share link (docs/share-links.md) for this\n"
	"               path, udp://HOST:PORT or tcp://HOST:PORT as clients reach\n"
	"               the server (its public address); repeat for every path\n"
	"  --name NAME  a name for the link, shown by clients (64 bytes at most)\n"
	"  --qr         print the link as a QR code too (needs libqrencode)\n"
	"  -h, --help   this help\n"
	"\n"
	"'sctpt client LINK' then needs nothing else.  The link holds the cert=:\n"
	"whoever has it can use the server, so hand it out as you would cert=.\n");
}

int keygen_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "show", no_argument, NULL, 's' },
		{ "uri", required_argument, NULL, 'u' },
		{ "name", required_argument, NULL, 'n' },
		{ "qr", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *name = NULL;
	int force = 0, show = 0, qr = 0, opt, n;
	struct wire_identity id;
	struct sharelink link;
	char err[256], cert[WIRE_CERT_B64_MAX], buf[SHARELINK_MAX_LEN + 1];

	memset(&link, 0, sizeof(link));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': path = optarg; break;
		case 'f': force = 1; break;
		case 's': show = 1; break;
		case 'u':
			if (cli_link_add_url(&link, "--uri", optarg) < 0)
				return 2;
			break;
		case 'n': name = optarg; break;
		case 'Q': qr = 1; break;
		case 'h': keygen_usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'sctpt keygen --help'.\n");
			return 2;
		}
	}
	if (path == NULL || optind < argc || (force && show)) {
		keygen_usage(stderr);
		return 2;
	}
	if ((name != NULL || qr) && link.npaths == 0) {
		fprintf(stderr, "sctpt keygen: --name and --qr need --uri\n");
		return 2;
	}
	if (name != NULL) {
		if (strlen(name) >= sizeof(link.name)) {
			fprintf(stderr, "sctpt keygen: --name is longer than %zu bytes\n",
			        sizeof(link.name) - 1);
			return 2;
		}
		strcpy(link.name, name);
	}
	if (show) {
		if (cli_key_load(path, &id, err, sizeof(err)) < 0) {
			fprintf(stderr, "sctpt keygen: %s\n", err);
			return 1;
		}
	} else if (wire_identity_generate(&id) < 0 ||
	           cli_key_save(path, &id, force, err, sizeof(err)) < 0) {
		fprintf(stderr, "sctpt keygen: %s\n", err);
		return 1;
	}
	if (wire_cert_encode(&id.cert, cert, sizeof(cert)) < 0)
		return 1;
	wc_wipe(&id, sizeof(id));
	printf("cert=%s\n", cert);
	if (!show)
		fprintf(stderr, "wrote %s; give clients: --cert %s\n", path, cert);
	if (link.npaths == 0)
		return 0;
	if (strlen(cert) != SHARELINK_CERT_LEN)
		return 1;
	memcpy(link.cert, cert, SHARELINK_CERT_LEN + 1);
	n = sharelink_format(&link, buf, sizeof(buf));
	if (n < 0) {
		/* Every part was checked above; only the name can still be refused. */
		fprintf(stderr, "sctpt keygen: cannot make a link: --name must be UTF-8 without "
		        "control characters\n");
		return 2;
	}
	printf("%s\n", buf);
	if (qr && cli_qr_print(stdout, buf, err, sizeof(err)) < 0) {
		fflush(stdout);
		fprintf(stderr, "sctpt keygen: %s\n", err);
		return 1;
	}
	return 0;
}
