/* The arche test guest: a freestanding x86-64 program that proves the VMM.
 * It runs commands from its command line (see README.md) and reports over the
 * serial port; the last word is the exit port (0x501), which carries a status. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef __builtin_va_list va_list;
#define va_start __builtin_va_start
#define va_arg __builtin_va_arg
#define va_end __builtin_va_end

#define EXIT_PORT 0x501
#define COM1 0x3f8
#define LAPIC 0xfee00000ul
#define MAX_CPUS 8

/* ---- libc bits the compiler may call ------------------------------------------ */

/* String instructions: one instruction instead of a loop, which matters on the
 * test machines, where the nested KVM executes guest code slowly. */
void* memset(void* d, int c, u64 n) {
  void* p = d;
  __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
  return d;
}
void* memcpy(void* d, const void* s, u64 n) {
  void* p = d;
  __asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
  return d;
}
int memcmp(const void* a, const void* b, u64 n) {
  const u8 *p = a, *q = b;
  for (; n; --n, ++p, ++q)
    if (*p != *q) return *p - *q;
  return 0;
}

/* ---- port and memory access ---------------------------------------------------- */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u32 inl(u16 port) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline u8 r8(u64 a) { return *(volatile u8*)a; }
static inline u16 r16(u64 a) { return *(volatile u16*)a; }
static inline u32 r32(u64 a) { return *(volatile u32*)a; }
static inline void w8(u64 a, u8 v) { *(volatile u8*)a = v; }
static inline void w16(u64 a, u16 v) { *(volatile u16*)a = v; }
static inline void w32(u64 a, u32 v) { *(volatile u32*)a = v; }
static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((u64)hi << 32) | lo;
}

/* ---- serial output ------------------------------------------------------------- */

static volatile u32 print_lock;

static void lock(volatile u32* l) {
  while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) cpu_relax();
}
static void unlock(volatile u32* l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static void serial_putc(char c) {
  for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); ++i) cpu_relax();
  outb(COM1, (u8)c);
}

static char* fmt_num(char* p, char* end, u64 v, unsigned base, int width, char pad, int neg) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  if (neg) tmp[n++] = '-';
  while (n < width && p < end) *p++ = pad, --width;
  while (n && p < end) *p++ = tmp[--n];
  return p;
}

/* printf with %s %c %d %u %x %lu %lx %ld, optional zero padding and width. */
static void print(const char* f, ...) {
  char buf[256], *p = buf, *end = buf + sizeof buf - 1;
  va_list ap;
  va_start(ap, f);
  for (; *f && p < end; ++f) {
    if (*f != '%') {
      *p++ = *f;
      continue;
    }
    ++f;
    char pad = ' ';
    int width = 0, is_long = 0;
    if (*f == '0') pad = '0', ++f;
    while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
    if (*f == 'l') is_long = 1, ++f;
    switch (*f) {
      case 's': {
        const char* s = va_arg(ap, const char*);
        while (*s && p < end) *p++ = *s++;
        break;
      }
      case 'c': *p++ = (char)va_arg(ap, int); break;
      case 'd': {
        long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
        p = fmt_num(p, end, (u64)(v < 0 ? -v : v), 10, width, pad, v < 0);
        break;
      }
      case 'u': p = fmt_num(p, end, is_long ? va_arg(ap, u64) : va_arg(ap, u32), 10, width, pad, 0); break;
      case 'x': p = fmt_num(p, end, is_long ? va_arg(ap, u64) : va_arg(ap, u32), 16, width, pad, 0); break;
      default: *p++ = *f; break;
    }
  }
  va_end(ap);
  lock(&print_lock);
  for (char* q = buf; q < p; ++q) {
    if (*q == '\n') serial_putc('\r');
    serial_putc(*q);
  }
  unlock(&print_lock);
}

static void halt_forever(void) {
  for (;;) __asm__ volatile("cli; hlt");
}

static void guest_exit(int code) {
  print("guest: exit %d\n", code);
  outb(EXIT_PORT, (u8)code);
  halt_forever();  /* without an exit device (QEMU without isa-debug-exit) */
}

/* ---- time: PIT channel 2 one-shots (port 0x61 shows its output) ------------------- */

static void delay_ms(unsigned ms) {
  while (ms) {
    unsigned chunk = ms > 50 ? 50 : ms;
    unsigned count = 1193 * chunk;
    outb(0x61, (u8)((inb(0x61) & ~0x02) | 0x01)); /* gate on, speaker off */
    outb(0x43, 0xb0);                              /* channel 2, lo/hi, mode 0 */
    outb(0x42, (u8)count);
    outb(0x42, (u8)(count >> 8));
    for (u64 spins = 0; !(inb(0x61) & 0x20) && spins < 100000000ul; ++spins) cpu_relax();
    ms -= chunk;
  }
}

/* ---- checksums and patterns (tests/hv/guest_pattern.h computes the same) ----------- */

/* FNV-1a over 64-bit little-endian words (n is a multiple of 8): a checksum the
 * host recomputes (tests/hv/guest_protocol.h). */
static u64 fnv1a(u64 h, const u8* p, u64 n) {
  const u64* w = (const u64*)p;
  for (u64 i = 0; i < n / 8; ++i) h = (h ^ w[i]) * 0x100000001b3ul;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ul

static void fill_sector(u8* out, u64 sector, u64 seed) {
  u64 x = seed * 0x9e3779b97f4a7c15ul ^ (sector + 1) * 0xbf58476d1ce4e5b9ul;
  if (!x) x = 1;
  u64* w = (u64*)out;
  for (int i = 0; i < 64; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
}

/* ---- PCI ----------------------------------------------------------------------- */

static u32 pci_read(unsigned slot, unsigned off) {
  outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
  return inl(0xcfc);
}
static void pci_write(unsigned slot, unsigned off, u32 v) {
  outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
  outl(0xcfc, v);
}
static u8 pci_read8(unsigned slot, unsigned off) { return (u8)(pci_read(slot, off) >> ((off & 3) * 8)); }

static u64 next_bar = 0xe0000000ul; /* for BARs nobody assigned */

static u64 pci_bar(unsigned slot, unsigned bar) {
  unsigned off = 0x10 + 4 * bar;
  u32 v = pci_read(slot, off);
  if (v & 1) return 0; /* I/O BAR: not used */
  u64 addr = v & ~0xful;
  int is64 = ((v >> 1) & 3) == 2;
  if (is64) addr |= (u64)pci_read(slot, off + 4) << 32;
  if (!addr || addr >= 0x100000000ul) {
    pci_write(slot, off, 0xffffffffu);
    u32 size = ~(pci_read(slot, off) & ~0xfu) + 1;
    next_bar = (next_bar + size - 1) & ~(u64)(size - 1);
    addr = next_bar;
    next_bar += size;
    pci_write(slot, off, (u32)addr);
    if (is64) pci_write(slot, off + 4, 0);
  }
  return addr;
}

/* ---- virtio (modern PCI transport, polling) ------------------------------------------- */

struct vq {
  u16 size, last_used, notify_off, index;
  u8* mem; /* desc at 0, avail at 1024, used at 2048 */
};
struct vdev {
  unsigned slot;
  u16 device_id;
  u64 common, isr, device, notify;
  u32 notify_mult;
  struct vq q[2];
  int ready;
};

#define DESC(q, i) ((u8*)(q)->mem + 16 * (i))
#define AVAIL(q) ((u8*)(q)->mem + 1024)
#define USED(q) ((u8*)(q)->mem + 2048)
#define QUEUE_SIZE 64

static u8 queue_pages[16][4096] __attribute__((aligned(4096)));
static unsigned queue_pages_used;
static struct vdev blks[8], nets[2], rngs[1];
static unsigned blk_count, net_count, rng_count, current_blk;

static int virtio_find_caps(struct vdev* d) {
  if (!(pci_read(d->slot, 0x04) & (0x10u << 16))) return 0;
  unsigned p = pci_read8(d->slot, 0x34) & 0xfc;
  for (int guard = 0; p && guard < 48; ++guard) {
    u8 id = pci_read8(d->slot, p), next = pci_read8(d->slot, p + 1);
    if (id == 0x09) {
      u8 type = pci_read8(d->slot, p + 3), bar = pci_read8(d->slot, p + 4);
      u64 base = pci_bar(d->slot, bar) + pci_read(d->slot, p + 8);
      if (type == 1) d->common = base;
      else if (type == 2) d->notify = base, d->notify_mult = pci_read(d->slot, p + 16);
      else if (type == 3) d->isr = base;
      else if (type == 4) d->device = base;
    }
    p = next & 0xfc;
  }
  pci_write(d->slot, 0x04, pci_read(d->slot, 0x04) | 0x6); /* memory + bus master */
  return d->common && d->notify && d->isr && d->device;
}

static void pci_scan(void) {
  for (unsigned slot = 0; slot < 32; ++slot) {
    u32 id = pci_read(slot, 0);
    if ((id & 0xffff) != 0x1af4) continue;
    u16 device = (u16)(id >> 16);
    u16 subsystem = (u16)(pci_read(slot, 0x2c) >> 16);
    int is_blk = device == 0x1042 || (device == 0x1001 && subsystem == 2);
    int is_net = device == 0x1041 || (device == 0x1000 && subsystem == 1);
    int is_rng = device == 0x1044 || (device == 0x1005 && subsystem == 4);
    struct vdev* d = 0;
    if (is_blk && blk_count < 8) d = &blks[blk_count++];
    else if (is_net && net_count < 2) d = &nets[net_count++];
    else if (is_rng && rng_count < 1) d = &rngs[rng_count++];
    if (!d) continue;
    d->slot = slot;
    d->device_id = device;
    if (!virtio_find_caps(d)) print("pci: slot %u: virtio device without modern capabilities\n", slot);
  }
  print("pci: %u virtio-blk, %u virtio-net, %u virtio-rng\n", blk_count, net_count, rng_count);
}

static u8 status_of(struct vdev* d) { return r8(d->common + 0x14); }

static int virtio_init(struct vdev* d, unsigned nqueues, u32 want_features) {
  u64 c = d->common;
  w8(c + 0x14, 0);
  for (int i = 0; i < 1000000 && r8(c + 0x14); ++i) cpu_relax();
  w8(c + 0x14, 1);
  w8(c + 0x14, 1 | 2);
  w32(c + 0x00, 0);
  u32 lo = r32(c + 0x04);
  w32(c + 0x00, 1);
  u32 hi = r32(c + 0x04);
  if (!(hi & 1)) {
    print("virtio: slot %u does not offer VERSION_1\n", d->slot);
    return 0;
  }
  w32(c + 0x08, 0);
  w32(c + 0x0c, lo & want_features);
  w32(c + 0x08, 1);
  w32(c + 0x0c, 1);
  w8(c + 0x14, 1 | 2 | 8);
  if (!(r8(c + 0x14) & 8)) {
    print("virtio: slot %u refused our features\n", d->slot);
    return 0;
  }
  for (unsigned i = 0; i < nqueues; ++i) {
    struct vq* q = &d->q[i];
    if (!q->mem) {
      if (queue_pages_used == 16) return 0;
      q->mem = queue_pages[queue_pages_used++];
    }
    memset(q->mem, 0, 4096);
    w16(c + 0x16, (u16)i);
    u16 max = r16(c + 0x18);
    q->size = max < QUEUE_SIZE ? max : QUEUE_SIZE;
    q->last_used = 0;
    q->index = (u16)i;
    w16(c + 0x18, q->size);
    q->notify_off = r16(c + 0x1e);
    u64 a = (u64)q->mem;
    w32(c + 0x20, (u32)a), w32(c + 0x24, (u32)(a >> 32));
    w32(c + 0x28, (u32)(a + 1024)), w32(c + 0x2c, (u32)((a + 1024) >> 32));
    w32(c + 0x30, (u32)(a + 2048)), w32(c + 0x34, (u32)((a + 2048) >> 32));
    w16(c + 0x1c, 1);
  }
  w8(c + 0x14, 1 | 2 | 8 | 4);
  d->ready = 1;
  return 1;
}

static void set_desc(struct vq* q, u16 i, u64 addr, u32 len, u16 flags, u16 next) {
  u8* d = DESC(q, i);
  memcpy(d, &addr, 8);
  memcpy(d + 8, &len, 4);
  memcpy(d + 12, &flags, 2);
  memcpy(d + 14, &next, 2);
}

static void submit(struct vdev* d, struct vq* q, u16 head) {
  u8* avail = AVAIL(q);
  u16 idx = *(volatile u16*)(avail + 2);
  *(u16*)(avail + 4 + 2 * (idx % q->size)) = head;
  barrier();
  *(volatile u16*)(avail + 2) = (u16)(idx + 1);
  barrier();
  w16(d->notify + (u64)q->notify_off * d->notify_mult, q->index);
}

/* Waits for the next used element; returns 0 on timeout. */
static int wait_used(struct vq* q, u32* len, u32* id, u64 timeout_cycles) {
  u64 start = rdtsc();
  while (*(volatile u16*)(USED(q) + 2) == q->last_used) {
    if (rdtsc() - start > timeout_cycles) return 0;
    cpu_relax();
  }
  barrier();
  u8* e = USED(q) + 4 + 8 * (q->last_used % q->size);
  memcpy(id, e, 4);
  memcpy(len, e + 4, 4);
  ++q->last_used;
  return 1;
}

#define SECOND 4000000000ul /* generous: TSC rates are 1-4 GHz */

/* ---- virtio-blk ---------------------------------------------------------------- */

static struct {
  u32 type, reserved;
  u64 sector;
} blk_header __attribute__((aligned(16)));
static u8 blk_status;
static u8 blk_buffer[64 * 512] __attribute__((aligned(4096)));

static struct vdev* blk(void) {
  if (current_blk >= blk_count) {
    print("blk: no virtio-blk device %u\n", current_blk);
    guest_exit(2);
  }
  struct vdev* d = &blks[current_blk];
  /* flush, discard, write-zeroes when offered */
  if (!d->ready && !virtio_init(d, 1, (1u << 9) | (1u << 13) | (1u << 14))) guest_exit(2);
  return d;
}

/* type 0 read, 1 write, 4 flush, 8 get-id, 11 discard, 13 write-zeroes. Returns
 * the status byte (0xff: timeout). */
static int blk_request(u32 type, u64 sector, u8* data, u32 len) {
  struct vdev* d = blk();
  struct vq* q = &d->q[0];
  blk_header.type = type;
  blk_header.sector = sector;
  blk_status = 0xff;
  set_desc(q, 0, (u64)&blk_header, 16, 1, 1);
  if (len) {
    int device_reads = type == 1 || type == 11 || type == 13;
    set_desc(q, 1, (u64)data, len, (u16)(1 | (device_reads ? 0 : 2)), 2);
    set_desc(q, 2, (u64)&blk_status, 1, 2, 0);
  } else {
    set_desc(q, 1, (u64)&blk_status, 1, 2, 0);
  }
  submit(d, q, 0);
  u32 used_len, id;
  if (!wait_used(q, &used_len, &id, 10 * SECOND)) {
    print("blk: request timed out (device status %x)\n", status_of(d));
    return 0xff;
  }
  return blk_status;
}

static void cmd_write(u64 sector, u64 count, u64 seed) {
  u64 h = FNV_INIT;
  for (u64 done = 0; done < count;) {
    u64 n = count - done > 64 ? 64 : count - done;
    for (u64 i = 0; i < n; ++i) fill_sector(blk_buffer + 512 * i, sector + done + i, seed);
    h = fnv1a(h, blk_buffer, n * 512);
    int s = blk_request(1, sector + done, blk_buffer, (u32)(n * 512));
    if (s) {
      print("write: sector %lu failed with status %d\n", sector + done, s);
      guest_exit(3);
    }
    done += n;
  }
  print("write: disk %u sectors %lu+%lu seed %lu checksum %016lx\n", current_blk, sector, count, seed, h);
}

static void cmd_read(u64 sector, u64 count) {
  u64 h = FNV_INIT;
  for (u64 done = 0; done < count;) {
    u64 n = count - done > 64 ? 64 : count - done;
    int s = blk_request(0, sector + done, blk_buffer, (u32)(n * 512));
    if (s) {
      print("read: sector %lu failed with status %d\n", sector + done, s);
      guest_exit(3);
    }
    h = fnv1a(h, blk_buffer, n * 512);
    done += n;
  }
  print("read: disk %u sectors %lu+%lu checksum %016lx\n", current_blk, sector, count, h);
}

static void cmd_getid(void) {
  memset(blk_buffer, 0, 21);
  int s = blk_request(8, 0, blk_buffer, 20);
  print("getid: disk %u status %d id '%s'\n", current_blk, s, (char*)blk_buffer);
}

/* discard (11) or write-zeroes (13) of one range. */
static void cmd_unmap(u32 type, u64 sector, u64 count, u32 flags) {
  struct {
    u64 sector;
    u32 count, flags;
  } seg = {sector, (u32)count, flags};
  memcpy(blk_buffer, &seg, sizeof seg);
  int s = blk_request(type, 0, blk_buffer, sizeof seg);
  print("%s: disk %u sectors %lu+%lu status %d\n", type == 11 ? "discard" : "zeroes", current_blk, sector, count, s);
}

/* Reads the ISR of the selected disk (reading clears it and lowers INTx). */
static void cmd_isr(void) { print("isr: disk %u %x\n", current_blk, r8(blk()->isr)); }

static void cmd_cpuid(void) {
  u32 a, b, c, d, b7 = 0;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
  u32 max = a;
  __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
  u32 c1 = c, d1 = d, apic = b >> 24;
  if (max >= 7) __asm__ volatile("cpuid" : "=a"(a), "=b"(b7), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  print("cpuid: max %x leaf1 ecx %08x edx %08x leaf7 ebx %08x apic %u\n", max, c1, d1, b7, apic);
}

static void cmd_flush(void) { print("flush: disk %u status %d\n", current_blk, blk_request(4, 0, 0, 0)); }

/* Programs a malformed queue and checks that the device reports NEEDS_RESET. */
static void cmd_badqueue(const char* kind) {
  struct vdev* d = blk();
  struct vq* q = &d->q[0];
  if (!memcmp(kind, "loop", 5)) {
    set_desc(q, 0, (u64)blk_buffer, 16, 1, 1);
    set_desc(q, 1, (u64)blk_buffer + 512, 512, 1, 0); /* 1 -> 0 -> 1 ... */
    submit(d, q, 0);
  } else if (!memcmp(kind, "oob", 4)) {
    set_desc(q, 0, 0x7ff000000000ul, 16, 1, 1); /* far outside RAM */
    set_desc(q, 1, (u64)&blk_status, 1, 2, 0);
    submit(d, q, 0);
  } else if (!memcmp(kind, "len", 4)) {
    set_desc(q, 0, (u64)blk_buffer, 0xfffff000u, 1, 1); /* absurd length */
    set_desc(q, 1, (u64)&blk_status, 1, 2, 0);
    submit(d, q, 0);
  } else if (!memcmp(kind, "avail", 6)) {
    *(volatile u16*)(AVAIL(q) + 2) = (u16)(*(volatile u16*)(AVAIL(q) + 2) + 1000);
    barrier();
    w16(d->notify + (u64)q->notify_off * d->notify_mult, 0);
  } else if (!memcmp(kind, "ring", 5)) {
    u64 c = d->common;
    w8(c + 0x14, 0);
    w8(c + 0x14, 1 | 2);
    w32(c + 0x08, 1), w32(c + 0x0c, 1);
    w8(c + 0x14, 1 | 2 | 8);
    w16(c + 0x16, 0);
    w16(c + 0x18, QUEUE_SIZE);
    w32(c + 0x20, 0), w32(c + 0x24, 0x100); /* descriptor table at 1 TiB */
    w16(c + 0x1c, 1);
    w8(c + 0x14, 1 | 2 | 8 | 4);
  } else {
    print("badqueue: unknown kind '%s' (loop, oob, len, avail, ring)\n", kind);
    guest_exit(2);
  }
  u64 start = rdtsc();
  while (!(status_of(d) & 0x40) && rdtsc() - start < 5 * SECOND) cpu_relax();
  u8 st = status_of(d);
  print("badqueue: %s: device status %x needs-reset %d\n", kind, st, (st & 0x40) ? 1 : 0);
  if (!(st & 0x40)) guest_exit(4);
  d->ready = 0; /* the next request re-initialises it */
  print("badqueue: %s: re-initialised: %s\n", kind, virtio_init(d, 1, 0) ? "ok" : "failed");
}

/* ---- virtio-net ---------------------------------------------------------------- */

static u8 rx_buffers[8][2048] __attribute__((aligned(4096)));
static u8 tx_buffer[2048] __attribute__((aligned(64)));

static void cmd_net(void) {
  if (!net_count) {
    print("net: no virtio-net device\n");
    guest_exit(2);
  }
  struct vdev* d = &nets[0];
  if (!virtio_init(d, 2, 1u << 5)) guest_exit(2);
  u8 mac[6];
  for (int i = 0; i < 6; ++i) mac[i] = r8(d->device + i);
  print("net: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  struct vq* rx = &d->q[0];
  struct vq* tx = &d->q[1];
  for (u16 i = 0; i < 8; ++i) {
    set_desc(rx, i, (u64)rx_buffers[i], sizeof rx_buffers[i], 2, 0);
    *(u16*)(AVAIL(rx) + 4 + 2 * i) = i;
  }
  barrier();
  *(volatile u16*)(AVAIL(rx) + 2) = 8;
  barrier();
  w16(d->notify + (u64)rx->notify_off * d->notify_mult, 0);

  memset(tx_buffer, 0, sizeof tx_buffer);
  u8* f = tx_buffer + 12;
  memset(f, 0xff, 6);
  memcpy(f + 6, mac, 6);
  f[12] = 0x88, f[13] = 0xb5;
  memcpy(f + 14, "arche-guest-frame", 18);
  set_desc(tx, 0, (u64)tx_buffer, 12 + 60, 0, 0);
  submit(d, tx, 0);
  u32 len, id;
  if (!wait_used(tx, &len, &id, 5 * SECOND)) {
    print("net: transmit timed out\n");
    guest_exit(5);
  }
  print("net: sent frame\n");
  for (int tries = 0; tries < 3000; ++tries) {
    while (wait_used(rx, &len, &id, 0)) {
      u8* b = rx_buffers[id % 8];
      if (len >= 12 + 14 && b[12 + 12] == 0x88 && b[12 + 13] == 0xb6) {
        char text[33];
        u32 n = len - 26 < 32 ? len - 26 : 32;
        memcpy(text, b + 26, n);
        text[n] = 0;
        print("net: received '%s'\n", text);
        return;
      }
      /* something else (IPv6 chatter): give the buffer back */
      u16 ai = *(volatile u16*)(AVAIL(rx) + 2);
      *(u16*)(AVAIL(rx) + 4 + 2 * (ai % rx->size)) = (u16)(id % 8);
      barrier();
      *(volatile u16*)(AVAIL(rx) + 2) = (u16)(ai + 1);
      barrier();
      w16(d->notify + (u64)rx->notify_off * d->notify_mult, 0);
    }
    delay_ms(10);
  }
  print("net: no frame from the host\n");
  guest_exit(5);
}

/* ---- virtio-rng ---------------------------------------------------------------- */

static void cmd_rng(void) {
  if (!rng_count) {
    print("rng: no virtio-rng device\n");
    guest_exit(2);
  }
  struct vdev* d = &rngs[0];
  if (!d->ready && !virtio_init(d, 1, 0)) guest_exit(2);
  struct vq* q = &d->q[0];
  u64 sums[2];
  u32 lens[2];
  for (int i = 0; i < 2; ++i) {
    memset(blk_buffer, 0, 64);
    set_desc(q, 0, (u64)blk_buffer, 64, 2, 0);
    submit(d, q, 0);
    u32 id;
    if (!wait_used(q, &lens[i], &id, 5 * SECOND)) {
      print("rng: timed out\n");
      guest_exit(5);
    }
    sums[i] = fnv1a(FNV_INIT, blk_buffer, 64);
  }
  print("rng: got %u and %u bytes, %s\n", lens[0], lens[1], sums[0] != sums[1] ? "different" : "equal");
}

/* ---- RAM, ticks, SMP ----------------------------------------------------------- */

static void cmd_dirty(u64 mib, u64 seed) {
  u64 start = 32ul << 20, end = start + (mib << 20);
  u64 x = seed ? seed : 1;
  for (u64 a = start; a < end; a += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *(volatile u64*)a = x;
  }
  u64 h = fnv1a(FNV_INIT, (const u8*)start, end - start);
  print("dirty: %lu MiB at 32 MiB seed %lu checksum %016lx\n", mib, seed, h);
}

static void cmd_ticks(void) {
  for (u64 n = 1;; ++n) {
    delay_ms(100);
    print("tick %lu\n", n);
  }
}

extern volatile u32 ap_mode;
extern char ap_trampoline_start[], ap_trampoline_end[];
static volatile u32 cpus_online = 1;

void ap_main(u32 apic_id) {
  print("cpu %u: hello from an application processor\n", apic_id);
  __atomic_add_fetch(&cpus_online, 1, __ATOMIC_SEQ_CST);
  halt_forever();
}

static void cmd_smp(unsigned n) {
  if (n > MAX_CPUS) n = MAX_CPUS;
  memcpy((void*)0x8000, ap_trampoline_start, (u64)(ap_trampoline_end - ap_trampoline_start));
  ap_mode = 1;
  barrier();
  w32(LAPIC + 0xf0, r32(LAPIC + 0xf0) | 0x1ff); /* software-enable the LAPIC */
  for (unsigned id = 1; id < n; ++id) {
    w32(LAPIC + 0x310, id << 24);
    w32(LAPIC + 0x300, 0x4500); /* INIT */
    delay_ms(10);
    for (int k = 0; k < 2; ++k) {
      w32(LAPIC + 0x310, id << 24);
      w32(LAPIC + 0x300, 0x4600 | (0x8000 >> 12)); /* SIPI, vector 0x08 */
      delay_ms(1);
    }
  }
  u64 start = rdtsc();
  while (cpus_online < n && rdtsc() - start < 5 * SECOND) cpu_relax();
  print("smp: %u of %u cpus online\n", cpus_online, n);
  if (cpus_online < n) guest_exit(6);
}

/* ---- command line -------------------------------------------------------------- */

struct hvm_start_info {
  u32 magic, version, flags, nr_modules;
  u64 modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  u32 memmap_entries, reserved;
};

static u64 parse_num(const char** s) {
  u64 v = 0;
  const char* p = *s;
  if (p[0] == '0' && p[1] == 'x') {
    for (p += 2;; ++p) {
      if (*p >= '0' && *p <= '9') v = v * 16 + (u64)(*p - '0');
      else if (*p >= 'a' && *p <= 'f') v = v * 16 + (u64)(*p - 'a' + 10);
      else break;
    }
  } else {
    while (*p >= '0' && *p <= '9') v = v * 10 + (u64)(*p++ - '0');
  }
  if (*p == ',') ++p;
  *s = p;
  return v;
}

static int word_is(const char* w, const char* name, const char** arg) {
  while (*name && *w == *name) ++w, ++name;
  if (*name) return 0;
  if (*w == '=') {
    *arg = w + 1;
    return 1;
  }
  if (*w == 0) {
    *arg = w;
    return 1;
  }
  return 0;
}

static void run_command(const char* w) {
  const char* a;
  if (word_is(w, "smp", &a)) cmd_smp((unsigned)parse_num(&a));
  else if (word_is(w, "disk", &a)) current_blk = (unsigned)parse_num(&a);
  else if (word_is(w, "write", &a)) {
    u64 s = parse_num(&a), c = parse_num(&a), seed = parse_num(&a);
    cmd_write(s, c, seed);
  } else if (word_is(w, "read", &a)) {
    u64 s = parse_num(&a), c = parse_num(&a);
    cmd_read(s, c);
  } else if (word_is(w, "getid", &a)) cmd_getid();
  else if (word_is(w, "flush", &a)) cmd_flush();
  else if (word_is(w, "isr", &a)) cmd_isr();
  else if (word_is(w, "cpuid", &a)) cmd_cpuid();
  else if (word_is(w, "discard", &a)) {
    u64 s = parse_num(&a), c = parse_num(&a);
    cmd_unmap(11, s, c, 0);
  } else if (word_is(w, "zeroes", &a)) {
    u64 s = parse_num(&a), c = parse_num(&a), unmap = parse_num(&a);
    cmd_unmap(13, s, c, unmap ? 1 : 0);
  }
  else if (word_is(w, "badqueue", &a)) cmd_badqueue(a);
  else if (word_is(w, "net", &a)) cmd_net();
  else if (word_is(w, "rng", &a)) cmd_rng();
  else if (word_is(w, "dirty", &a)) {
    u64 m = parse_num(&a), seed = parse_num(&a);
    cmd_dirty(m, seed);
  } else if (word_is(w, "ticks", &a)) cmd_ticks();
  else if (word_is(w, "jump-mmio", &a)) {
    /* Execute from the PCI hole, where there is no RAM: KVM cannot fetch the
     * instruction and gives up (KVM_EXIT_INTERNAL_ERROR), which the VMM must report. */
    print("guest: jumping to 0xfebf0000\n");
    ((void (*)(void))0xfebf0000ul)();
  } else if (word_is(w, "sleep", &a)) {
    u64 ms = parse_num(&a);
    delay_ms((unsigned)ms);
    print("guest: slept %lu ms\n", ms);
  } else if (word_is(w, "halt", &a)) {
    print("guest: halting\n");
    halt_forever();
  } else if (word_is(w, "exit", &a)) guest_exit((int)parse_num(&a));
  else if (w[0] == '-' || !memcmp(w, "console=", 8) || !memcmp(w, "earlyprintk", 11)) {
    /* options meant for other kernels: ignore */
  } else {
    print("guest: unknown command '%s'\n", w);
    guest_exit(2);
  }
}

void guest_main(u32 start_info_address) {
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 1, 0x00); /* no interrupts: the guest polls */
  print("arche test guest: hello\n");
  const struct hvm_start_info* si = (const struct hvm_start_info*)(u64)start_info_address;
  if (!si || si->magic != 0x336ec578) {
    print("guest: no hvm_start_info (magic %x)\n", si ? si->magic : 0);
    guest_exit(2);
  }
  const char* cmdline = si->cmdline_paddr ? (const char*)si->cmdline_paddr : "";
  print("guest: cmdline '%s'\n", cmdline);
  pci_scan();
  print("cpu 0: hello from the boot processor\n");
  char word[128];
  for (const char* p = cmdline; *p;) {
    while (*p == ' ') ++p;
    unsigned n = 0;
    while (*p && *p != ' ' && n < sizeof word - 1) word[n++] = *p++;
    word[n] = 0;
    if (n) run_command(word);
  }
  print("guest: done\n");
  guest_exit(0);
}
