/* Why a prune removed nothing (rm_prune_nothing in remodel.h): from its report and
 * options alone, with the rounding rm_prune uses (floor(R x C) channels of a group of C,
 * never its last one). */
#include "remodel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A group left whole because it is the model's output: the expected reason, not the one
 * to tell (a classifier's logits are unprunable in every model). */
static bool at_output(const rm_prune_group *g)
{
    return strstr(g->reason, "graph output") != NULL;
}

bool rm_prune_nothing(const rm_prune_report *rep, const rm_prune_options *o, char *why, size_t n)
{
    int64_t total = 0, largest = 0, prunable = 0;
    const rm_prune_group *first_blocked = NULL, *largest_g = NULL;
    for (size_t i = 0; i < rep->n_groups; i++) {
        const rm_prune_group *g = &rep->groups[i];
        if (g->after != g->before)
            return false;
        if (!g->prunable && (!first_blocked || (at_output(first_blocked) && !at_output(g))))
            first_blocked = g;
        if (!g->considered)
            continue;
        prunable++;
        total += g->before;
        if (g->before > largest) {
            largest = g->before;
            largest_g = g;
        }
    }
    if (prunable == 0 && first_blocked)
        snprintf(why, n, "no group can be pruned (%s: %s)", first_blocked->name, first_blocked->reason);
    else if (prunable == 0)
        snprintf(why, n, "the model has no channel group to prune");
    else if (largest <= 1)
        snprintf(why, n, "every %s has one channel, and a group's last channel is never removed",
                 o->global ? "prunable group" : "group named");
    else if (o->global)
        snprintf(why, n, "--ratio %g of the %lld channels of %lld prunable group%s is less than one channel "
                 "(the smallest ratio that removes one is %.3g)", o->ratio, (long long)total, (long long)prunable,
                 prunable == 1 ? "" : "s", 1.0 / (double)total);
    else
        snprintf(why, n, "--ratio %g of %s's %lld channels is less than one channel (the smallest ratio that "
                 "removes one is %.3g)", o->ratio, largest_g->name, (long long)largest, 1.0 / (double)largest);
    return true;
}
