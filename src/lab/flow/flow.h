/* sctpt-lab send and recv: the traffic ends of the lab (docs/lab.md). */
#ifndef SCTPT_LAB_FLOW_H
#define SCTPT_LAB_FLOW_H

int send_main(int argc, char **argv);
int recv_main(int argc, char **argv);

#endif
