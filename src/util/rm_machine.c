/* Facts about the machine the library runs on (rm_machine.h). */
#include "rm_machine.h"

#include <unistd.h>

uint64_t rm_machine_memory_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES);
    long psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0)
        return (uint64_t)4 << 30;
    return (uint64_t)pages * (uint64_t)psize / 2;
}
