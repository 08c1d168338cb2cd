#include "lab/controller/controller.h"
int controller_main(int argc, char **argv) { return 2; }
