/* Facts about the machine the library runs on. */
#ifndef RM_MACHINE_H
#define RM_MACHINE_H

#include <stdint.h>

/* The default memory budget of one load or one session: half the machine's RAM (4 GB
 * when the system cannot tell). */
uint64_t rm_machine_memory_budget(void);

#endif
