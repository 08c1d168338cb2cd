/* Fault injection switch; see fault.h. */
#include "util/fault.h"

#include <stdlib.h>
#include <string.h>

#ifdef SCTPT_FAULT_INJECTION

#define FAULT_SITES 16
#define FAULT_NAME 48

static struct fault_site {
	char name[FAULT_NAME];
	unsigned calls;   /* calls seen since armed */
	unsigned nth;     /* first failing call, 1-based */
	unsigned count;   /* failures to inject, 0 = unlimited */
	unsigned fired;
} sites[FAULT_SITES];
static int nsites;
static int env_loaded;

static struct fault_site *site_find(const char *name, int create)
{
	for (int i = 0; i < nsites; i++)
		if (strcmp(sites[i].name, name) == 0)
			return &sites[i];
	if (!create || nsites == FAULT_SITES || strlen(name) >= FAULT_NAME)
		return NULL;
	memset(&sites[nsites], 0, sizeof(sites[nsites]));
	strcpy(sites[nsites].name, name);
	return &sites[nsites++];
}

/* SCTPT_FAULT=site:nth[:count],...  Malformed entries are ignored. */
static void env_load(void)
{
	const char *env = getenv("SCTPT_FAULT");
	char buf[512], *save = NULL;

	env_loaded = 1;
	if (env == NULL || strlen(env) >= sizeof(buf))
		return;
	strcpy(buf, env);
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(tok, ':'), *end;
		unsigned long nth, count = 1;

		if (c1 == NULL)
			continue;
		*c1++ = '\0';
		nth = strtoul(c1, &end, 10);
		if (end == c1 || nth == 0 || nth > 1000000)
			continue;
		if (*end == ':') {
			char *c2 = end + 1;

			count = strtoul(c2, &end, 10);
			if (end == c2 || count > 1000000)
				continue;
		}
		if (*end != '\0')
			continue;
		fault_arm(tok, (unsigned)nth, (unsigned)count);
	}
}

int fault_fire(const char *site)
{
	struct fault_site *s;

	if (!env_loaded)
		env_load();
	s = site_find(site, 0);
	if (s == NULL || s->nth == 0)
		return 0;
	s->calls++;
	if (s->calls < s->nth)
		return 0;
	if (s->count != 0 && s->calls >= s->nth + s->count)
		return 0;
	s->fired++;
	return 1;
}

void fault_arm(const char *site, unsigned nth, unsigned count)
{
	struct fault_site *s = site_find(site, 1);

	if (s == NULL)
		return;
	s->calls = 0;
	s->nth = nth;
	s->count = count;
}

void fault_reset(void)
{
	nsites = 0;
	env_loaded = 1;
}

unsigned fault_fired(const char *site)
{
	struct fault_site *s = site_find(site, 0);

	return s != NULL ? s->fired : 0;
}

#else

int fault_fire(const char *site)
{
	(void)site;
	return 0;
}

void fault_arm(const char *site, unsigned nth, unsigned count)
{
	(void)site;
	(void)nth;
	(void)count;
}

void fault_reset(void)
{
}

unsigned fault_fired(const char *site)
{
	(void)site;
	return 0;
}

#endif
