/* Bump allocator that owns every byte of an unpacked model.
 * One arena per model: protobuf-c unpacks into it and edits allocate from it; the
 * engine gives each plan one too, for its weights, activations and scratchpad. Nothing
 * is freed individually, rm_arena_free releases everything at once. Blocks come from
 * anonymous mmap with transparent huge pages (blocks of 4 MB and more start on a 2 MB
 * boundary), so a 50 MB model costs a few dozen page faults instead of ten thousand,
 * and reading it through costs few TLB misses. */
#ifndef RM_ARENA_H
#define RM_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct rm_arena_block;

struct rm_arena {
    struct rm_arena_block *head; /* newest block first */
    size_t next_size;            /* size hint for the next block */
    size_t used;                 /* bytes handed out, for statistics */
    ProtobufCAllocator pbc;      /* protobuf-c view of this arena */
};

/* Prepare an empty arena whose first block holds at least first_block bytes
 * (0 = default). Allocation happens lazily. */
void rm_arena_init(struct rm_arena *a, size_t first_block);

/* Release every block. Accepts NULL and an already freed arena. */
void rm_arena_free(struct rm_arena *a);

/* n bytes aligned to 16, uninitialised; NULL when memory is exhausted. */
void *rm_arena_alloc(struct rm_arena *a, size_t n);

/* n zeroed bytes aligned to 16; NULL on failure. */
void *rm_arena_calloc(struct rm_arena *a, size_t count, size_t size);

/* Copy of s (NUL-terminated) in the arena; NULL on failure. */
char *rm_arena_strdup(struct rm_arena *a, const char *s);

/* Copy of n bytes in the arena; NULL on failure. */
void *rm_arena_memdup(struct rm_arena *a, const void *p, size_t n);

/* RM_ASAN: built with AddressSanitizer, where buffers stay heap blocks (mappings of
 * their own would lose its overflow checks). */
#if defined(__SANITIZE_ADDRESS__)
#define RM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RM_ASAN 1
#endif
#endif

/* A zeroed anonymous mapping of n bytes (rounded up to pages), or NULL. RM_PAGES_HUGE:
 * from 4 MB on it starts on a 2 MB boundary and asks for transparent huge pages (the
 * arena's blocks); RM_PAGES_POPULATE: its pages are made present at once, one system call
 * instead of a page fault per 4 KB (memory about to be written whole). */
enum { RM_PAGES_HUGE = 1, RM_PAGES_POPULATE = 2 };
void *rm_pages_alloc(size_t n, int flags);

/* Unmap what rm_pages_alloc(n) gave (NULL is ignored). */
void rm_pages_free(void *p, size_t n);
/* Give back the pages of what rm_pages_alloc(n) gave past its first keep bytes (keep <= n):
 * it is then what rm_pages_alloc(keep) would have given, for rm_pages_free. */
void rm_pages_trim(void *p, size_t n, size_t keep);

#endif
