/* sctpt-lab controller: REST API, scenarios and dashboard (docs/lab.md). */
#ifndef SCTPT_LAB_CONTROLLER_H
#define SCTPT_LAB_CONTROLLER_H

int controller_main(int argc, char **argv);

#endif
