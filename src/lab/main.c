/*
 * sctpt-lab entry point: the tools for studying sctpt, kept out of the
 * binary that users run (sctpt).  One table of tools; each takes over
 * argv from its own name on.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "lab/controller/controller.h"
#include "lab/flow/flow.h"
#include "lab/impair/impair.h"

#ifndef SCTPT_VERSION
#error "SCTPT_VERSION comes from meson.build (project version)"
#endif

static const struct lab_tool {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;              /* lines of the command list, indented */
} tools[] = {
	{ "impair", impair_main,
	  "a man-in-the-middle that adds loss, delay, duplication,\n"
	  "            reordering and rate limits (UDP, TCP, or IP between two\n"
	  "            network namespaces), controlled by a JSON REST API\n" },
	{ "send", send_main,
	  "sends a pattern, a file or rpc requests in N streams, directly or\n"
	  "            through a SOCKS5 proxy (sctpt, ssh -D, ss-local), to recv\n" },
	{ "recv", recv_main,
	  "receives and verifies them, with a processing delay per read that\n"
	  "            can change at run time\n" },
	{ "controller", controller_main,
	  "drives send, recv, impair and sctpt metrics: REST API, scenarios,\n"
	  "            runs, and a web dashboard with live charts\n" },
};
#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

static void usage(FILE *f)
{
	fprintf(f,
	"sctpt-lab %s - test and measurement tools for sctpt\n"
	"\n"
	"Usage: sctpt-lab TOOL [OPTIONS]\n"
	"\n"
	"Tools:\n", SCTPT_VERSION);
	for (size_t i = 0; i < NTOOLS; i++)
		fprintf(f, "  %-9s %s", tools[i].name, tools[i].help);
	fprintf(f,
	"  version   print the version\n"
	"  help      this text\n"
	"\n"
	"Run 'sctpt-lab TOOL --help' for the options of a tool.  The tunnel itself\n"
	"is the other binary, sctpt.\n");
}

int main(int argc, char **argv)
{
	const char *cmd;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	for (size_t i = 0; i < NTOOLS; i++)
		if (strcmp(cmd, tools[i].name) == 0)
			return tools[i].main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("sctpt-lab %s\n", SCTPT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sctpt-lab: unknown tool '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
