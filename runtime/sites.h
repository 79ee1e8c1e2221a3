/*
 * sites.h: who made each object, as a small number per store entry.
 *
 * A site is a short text, "put at file.lua:12" or a task's name, interned once in a
 * fixed table of the runtime and named in each entry by its index (entry->site, 0 when
 * unknown), so an entry pays four bytes, not a string. Interning takes no lock: a
 * string's slot is claimed with a compare-and-swap and never changes after, so readers
 * need only an acquire load. Past the table's size new texts are not recorded (site 0).
 */
#ifndef CRAY_SITES_H
#define CRAY_SITES_H

#include <stdint.h>

typedef struct cray__sites cray__sites;

/* NULL when memory is short. */
cray__sites *cray__sites_new(void);
void cray__sites_free(cray__sites *s);
/* The site of `text` (NULL: 0), made when new; 0 when the table is full or memory short. */
uint32_t cray__sites_intern(cray__sites *s, const char *text);
/* The text of site i, or NULL for 0. */
const char *cray__sites_name(cray__sites *s, uint32_t i);

#endif
