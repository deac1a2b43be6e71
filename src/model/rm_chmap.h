/* Channel maps: the record an edit leaves of which original channel each channel of a
 * tensor holds now, as ModelProto metadata, so that diff can compare a pruned model's
 * tensors with the original's channel by channel.
 *
 * Format: key "remodel.channel_map/<tensor name>", value one comma-separated entry per
 * channel (axis 1) of that tensor in the edited model: the index of the same channel in
 * the original model, or "-" for a channel with no counterpart ("0,1,2,5,7,-"). An edit of
 * an edited model composes with the map there, so maps always point at the original. */
#ifndef RM_CHMAP_H
#define RM_CHMAP_H

#include "rm_model.h"

#define RM_CHANNEL_MAP_KEY "remodel.channel_map/"
#define RM_CHANNEL_MAP_KEY_MAX 1024

/* The channel map value recorded in m for tensor, or NULL. */
const char *rm_channel_map_find(struct rm_model *m, const char *tensor);

/* Parse a map value into a malloc'd array (caller frees) of *len entries, -1 for "-".
 * Returns 0, RM_EFORMAT (a bad entry; err quotes it) or RM_ENOMEM. */
int rm_channel_map_parse(const char *text, int64_t **map, int64_t *len, struct rm_error *err);

/* Record that channel i of tensor now holds original channel map[i] (-1: new), composed
 * with a map recorded earlier for it. */
int rm_channel_map_record(struct rm_model *m, const char *tensor, const int64_t *map, int64_t n,
                          struct rm_error *err);

#endif
