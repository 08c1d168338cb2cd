/*
 * The progress display of send and recv: on a terminal one line redrawn in
 * place (bar, rate, ETA); otherwise plain lines, one per call, that logs
 * and pipes can hold.
 */
#include "lab/flow/flow_internal.h"

#include <string.h>
#include <unistd.h>

const char *fmt_bytes(double b, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

void progress_init(struct progress *p, FILE *f)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(fileno(f));
}

void progress_show(struct progress *p, FILE *f, const char *what, uint64_t done, uint64_t total,
                   double rate, uint64_t elapsed_ms, const char *extra, int final)
{
	char d[32], r[32], line[256], eta[32] = "";
	int n;

	fmt_bytes((double)done, d, sizeof(d));
	fmt_bytes(rate, r, sizeof(r));
	if (total > 0 && rate > 1 && done < total) {
		uint64_t s = (uint64_t)((double)(total - done) / rate);

		snprintf(eta, sizeof(eta), " ETA %llu:%02llu", (unsigned long long)(s / 60),
		         (unsigned long long)(s % 60));
	}
	if (p->tty && total > 0) {
		char bar[31];
		unsigned fill = (unsigned)(done >= total ? 30 : (done * 30) / total);

		memset(bar, '#', fill);
		memset(bar + fill, '.', 30 - fill);
		bar[30] = '\0';
		n = snprintf(line, sizeof(line), "%s [%s] %3u%% %s %s/s%s %s", what, bar,
		             (unsigned)(done >= total ? 100 : done * 100 / total), d, r, eta,
		             extra ? extra : "");
	} else {
		n = snprintf(line, sizeof(line), "%s %s %s/s %.1fs%s %s", what, d, r,
		             (double)elapsed_ms / 1000.0, eta, extra ? extra : "");
	}
	if (n < 0)
		return;
	if (p->tty) {
		size_t len = strlen(line);

		/* Blank what a longer previous line left. */
		fprintf(f, "\r%s%*s", line, p->last_len > len ? (int)(p->last_len - len) : 0, "");
		p->last_len = len;
		if (final)
			fputc('\n', f);
	} else {
		fprintf(f, "%s\n", line);
	}
	fflush(f);
}
