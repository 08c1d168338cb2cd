/*
 * Tunnel endpoint settings; see app.h.
 */
#include "app/app.h"

#include <string.h>

void app_tunnel_defaults(struct app_tunnel *t)
{
	memset(t, 0, sizeof(*t));
	mux_config_defaults(&t->mux);
	sctp_tuning_defaults(&t->sctp);
	wire_config_defaults(&t->wire);
}
