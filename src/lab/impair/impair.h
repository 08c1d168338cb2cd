/*
 * `sctpt-lab impair`: a man-in-the-middle that applies loss, delay, jitter,
 * duplication, reordering, rate limits and blackholes, per direction, to
 * UDP datagrams, TCP connections, or IP packets between two network
 * namespaces; settings change at run time through a JSON REST API.
 * See docs/impair.md.
 */
#ifndef SCTPT_LAB_IMPAIR_IMPAIR_H
#define SCTPT_LAB_IMPAIR_IMPAIR_H

/* The subcommand: argv[0] is "impair".  Returns the exit status. */
int impair_main(int argc, char **argv);

#endif
