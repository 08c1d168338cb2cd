/*
 * Share links as QR codes on a terminal (keygen --qr), drawn with Unicode
 * half blocks: two module rows per text line, so the code stays square in
 * an ordinary font.  Light modules are drawn in the text colour, which
 * suits the light-on-dark terminals most people have; phone scanners read
 * the inverted code on dark-on-light terminals too.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#ifdef SCTPT_HAVE_QRENCODE
#include <qrencode.h>

#define QUIET 2   /* modules of margin: enough for scanners, saves lines */

/* Whether module (x, y) of a width-w code with its margin is light. */
static int light(const QRcode *qr, int x, int y)
{
	x -= QUIET;
	y -= QUIET;
	if (x < 0 || y < 0 || x >= qr->width || y >= qr->width)
		return 1;
	return !(qr->data[y * qr->width + x] & 1);
}

int cli_qr_print(FILE *f, const char *text, char *err, size_t errlen)
{
	QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
	int size, x, y;

	if (qr == NULL) {
		snprintf(err, errlen, "cannot make a QR code of %zu bytes", strlen(text));
		return -1;
	}
	size = qr->width + 2 * QUIET;
	for (y = 0; y < size; y += 2) {
		for (x = 0; x < size; x++) {
			int top = light(qr, x, y), bottom = y + 1 < size ? light(qr, x, y + 1) : 0;

			fputs(top && bottom ? "\xe2\x96\x88" : top ? "\xe2\x96\x80" :
			      bottom ? "\xe2\x96\x84" : " ", f);
		}
		fputc('\n', f);
	}
	QRcode_free(qr);
	return 0;
}
#else
int cli_qr_print(FILE *f, const char *text, char *err, size_t errlen)
{
	snprintf(err, errlen, "--qr is not available: sctpt was built without libqrencode "
	         "(install libqrencode-dev and rebuild)");
	return -1;
}
#endif
