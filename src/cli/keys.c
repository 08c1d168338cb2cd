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

static void keygen_usage(FILE *f)
{
	fprintf(f,
	"Usage: sctpt keygen --key FILE [--force | --show]\n"
	"\n"
	"Creates a server identity (an X25519 key pair and a bridge secret) in FILE,\n"
	"mode 0600, and prints the cert= value clients need on stdout.  Only clients\n"
	"given that value can get any answer from the server.\n"
	"\n"
	"  --key FILE   where the private key is written (required)\n"
	"  --force      replace an existing FILE\n"
	"  --show       print the cert= of an existing FILE instead\n"
	"  -h, --help   this help\n");
}

int keygen_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "show", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	int force = 0, show = 0, opt;
	struct wire_identity id;
	char err[256], cert[WIRE_CERT_B64_MAX];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': path = optarg; break;
		case 'f': force = 1; break;
		case 's': show = 1; break;
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
	return 0;
}
