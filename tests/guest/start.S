/* Entry of the arche test guest.
 *
 * PVH: the VMM (arche, or QEMU's PVH option ROM) jumps to pvh_start in 32-bit
 * protected mode, paging off, %ebx = physical address of hvm_start_info. We build
 * identity page tables for 0-4 GiB with 2 MiB pages (once: the nested KVM of the
 * test machines handles that well), enter long mode and call guest_main.
 *
 * Application processors start in real mode at 0x8000 (ap_trampoline, copied
 * there by the boot processor before INIT-SIPI-SIPI), switch to protected mode,
 * reuse the same page tables and call ap_main with their APIC id.
 */
#define PAGE_PRESENT_RW 0x3
#define PAGE_LARGE      0x83
#define AP_TRAMPOLINE   0x8000
#define STACK_SIZE      16384
#define MAX_CPUS        8

    /* Xen ELF note: XEN_ELFNOTE_PHYS32_ENTRY (18) = pvh_start. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .long pvh_start

    .section .text.entry, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    cld
    movl %ebx, start_info_ptr
    lgdt gdt_descriptor
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl $bsp_stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..3] -> PD0..3; PDn[i] = 2 MiB pages. */
    movl $pml4, %edi
    movl $pdpt, %eax
    orl $PAGE_PRESENT_RW, %eax
    movl %eax, (%edi)
    movl $pdpt, %edi
    movl $pd, %eax
    orl $PAGE_PRESENT_RW, %eax
    movl $4, %ecx
1:  movl %eax, (%edi)
    addl $0x1000, %eax
    addl $8, %edi
    loop 1b
    movl $pd, %edi
    movl $PAGE_LARGE, %eax
    xorl %edx, %edx
    movl $2048, %ecx
2:  movl %eax, (%edi)
    movl %edx, 4(%edi)
    addl $0x200000, %eax
    adcl $0, %edx
    addl $8, %edi
    loop 2b

    .globl enter_long_mode
enter_long_mode:
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax            /* PAE */
    movl %eax, %cr4
    movl $0xc0000080, %ecx     /* EFER */
    rdmsr
    orl $0x100, %eax           /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax      /* PG | PE */
    movl %eax, %cr0
    ljmp $0x08, $long_entry

    .code64
long_entry:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    /* The boot processor and application processors share this path; APs have
     * ap_flag set and go to ap_main with their APIC id. */
    cmpl $0, ap_mode(%rip)
    jne ap_long
    leaq bsp_stack_top(%rip), %rsp
    movl start_info_ptr(%rip), %edi
    call guest_main
3:  cli
    hlt
    jmp 3b

ap_long:
    movl $0xfee00020, %eax     /* LAPIC ID register */
    movl (%rax), %edi
    shrl $24, %edi
    movl %edi, %eax
    andl $(MAX_CPUS - 1), %eax
    incl %eax
    imull $STACK_SIZE, %eax
    leaq ap_stacks(%rip), %rsp
    addq %rax, %rsp
    call ap_main
4:  cli
    hlt
    jmp 4b

    /* 32-bit entry of application processors, reached from the trampoline. */
    .code32
    .globl ap_entry32
ap_entry32:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    jmp enter_long_mode

    /* Real-mode trampoline: position independent within its page (CS = 0x0800). */
    .code16
    .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (tramp_gdt_descriptor - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $ap_entry32
    .balign 8
tramp_gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:

    .section .rodata
    .balign 16
gdt:
    .quad 0
    .quad 0x00af9a000000ffff   /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff   /* 0x10: data */
    .quad 0x00cf9a000000ffff   /* 0x18: 32-bit code (AP trampoline) */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .data
    .globl ap_mode
ap_mode:
    .long 0
start_info_ptr:
    .long 0

    .bss
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4 * 4096
    .balign 16
bsp_stack: .skip STACK_SIZE
bsp_stack_top:
ap_stacks: .skip STACK_SIZE * (MAX_CPUS + 1)

    .section .note.GNU-stack, "", @progbits
