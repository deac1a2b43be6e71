#include "rm_arena.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK ((size_t)1 << 20)

struct rm_arena_block {
    struct rm_arena_block *next;
    size_t size; /* mapping size, header included */
    size_t off;  /* first free byte, from the block start */
};

static void *pbc_alloc(void *ctx, size_t n)
{
    return rm_arena_alloc(ctx, n);
}

static void pbc_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* arena memory is released all at once */
}

void rm_arena_init(struct rm_arena *a, size_t first_block)
{
    a->head = NULL;
    a->next_size = first_block ? first_block : ARENA_DEFAULT_BLOCK;
    a->used = 0;
    a->pbc.alloc = pbc_alloc;
    a->pbc.free = pbc_free;
    a->pbc.allocator_data = a;
}

void rm_arena_free(struct rm_arena *a)
{
    if (!a)
        return;
    struct rm_arena_block *b = a->head;
    while (b) {
        struct rm_arena_block *next = b->next;
        rm_pages_free(b, b->size);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t pages_size(size_t n)
{
    return n > SIZE_MAX - 4095 ? 0 : (n + 4095) & ~(size_t)4095;
}

void *rm_pages_alloc(size_t n, int flags)
{
    size_t size = pages_size(n);
    if (!size)
        return NULL;
    /* mappings of 4 MB and more start on a 2 MB boundary, so that every 2 MB of them
     * can be a huge page (a mapping is only page-aligned: map 2 MB more and trim) */
    size_t slack = (flags & RM_PAGES_HUGE) && size >= 2 * HUGE_PAGE && size <= SIZE_MAX - HUGE_PAGE ? HUGE_PAGE : 0;
    char *p = mmap(NULL, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (slack) {
        size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
        if (head)
            munmap(p, head);
        if (slack - head)
            munmap(p + head + size, slack - head);
        p += head;
#ifdef MADV_HUGEPAGE
        madvise(p, size, MADV_HUGEPAGE);
#endif
    }
#ifdef MADV_POPULATE_WRITE
    if (flags & RM_PAGES_POPULATE)
        madvise(p, size, MADV_POPULATE_WRITE); /* (a kernel without it: faults as usual) */
#endif
    return p;
}

void rm_pages_free(void *p, size_t n)
{
    if (p)
        munmap(p, pages_size(n));
}

void rm_pages_trim(void *p, size_t n, size_t keep)
{
    size_t have = pages_size(n), want = pages_size(keep);
    if (p && want && have > want)
        munmap((char *)p + want, have - want);
}

static struct rm_arena_block *block_new(size_t min_payload, size_t hint)
{
    size_t hdr = (sizeof(struct rm_arena_block) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (min_payload > SIZE_MAX - hdr - 4096)
        return NULL;
    size_t size = pages_size(hint > min_payload + hdr ? hint : min_payload + hdr);
    struct rm_arena_block *b = rm_pages_alloc(size, RM_PAGES_HUGE);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->off = hdr;
    return b;
}

void *rm_arena_alloc(struct rm_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct rm_arena_block *b = a->head;
    if (!b || b->size - b->off < n) {
        b = block_new(n, a->next_size);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
        /* grow geometrically so many small edits stay cheap */
        if (a->next_size < ((size_t)64 << 20))
            a->next_size *= 2;
    }
    void *p = (char *)b + b->off;
    b->off += n;
    a->used += n;
    return p;
}

void *rm_arena_calloc(struct rm_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = rm_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *rm_arena_memdup(struct rm_arena *a, const void *src, size_t n)
{
    void *p = rm_arena_alloc(a, n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

char *rm_arena_strdup(struct rm_arena *a, const char *s)
{
    return rm_arena_memdup(a, s, strlen(s) + 1);
}
