# The fuzz targets: one line each. Built by the clang project in project/.
fuzz_target(qcow2_fuzz ${ARCHE_ROOT}/tests/fuzz/qcow2_fuzz.cpp arche_image)
# The backup repository's parsers (backup/ needs libsodium; it brings its own CMake).
add_subdirectory(${ARCHE_ROOT}/backup backup)
fuzz_target(backup_fuzz ${ARCHE_ROOT}/tests/fuzz/backup_fuzz.cpp arche_backup)
fuzz_target(vmdk_fuzz ${ARCHE_ROOT}/tests/fuzz/vmdk_fuzz.cpp arche_image)
fuzz_target(vhd_fuzz ${ARCHE_ROOT}/tests/fuzz/vhd_fuzz.cpp arche_image)
fuzz_target(vhdx_fuzz ${ARCHE_ROOT}/tests/fuzz/vhdx_fuzz.cpp arche_image)
fuzz_target(vdi_fuzz ${ARCHE_ROOT}/tests/fuzz/vdi_fuzz.cpp arche_image)
# The remote stores' parsers (S3 XML and HTTP heads, SFTP replies).
fuzz_target(s3_fuzz ${ARCHE_ROOT}/tests/fuzz/s3_fuzz.cpp arche_backup)
fuzz_target(sftp_fuzz ${ARCHE_ROOT}/tests/fuzz/sftp_fuzz.cpp arche_backup)
# Partition tables, LVM2, the volume tree and our own FAT and XFS readers
# (volume/ brings libext2fs, libntfs-3g, libseccomp).
add_subdirectory(${ARCHE_ROOT}/volume volume)
fuzz_target(partition_fuzz ${ARCHE_ROOT}/tests/fuzz/partition_fuzz.cpp arche_volume)
fuzz_target(lvm_fuzz ${ARCHE_ROOT}/tests/fuzz/lvm_fuzz.cpp arche_volume)
fuzz_target(fat_fuzz ${ARCHE_ROOT}/tests/fuzz/fat_fuzz.cpp arche_volume)
fuzz_target(xfs_fuzz ${ARCHE_ROOT}/tests/fuzz/xfs_fuzz.cpp arche_volume)
fuzz_target(mirror_fuzz ${ARCHE_ROOT}/tests/fuzz/mirror_fuzz.cpp arche_image)
# What arche reads from tapes and the tape catalog (tape/ needs backup/).
add_subdirectory(${ARCHE_ROOT}/tape tape)
fuzz_target(tape_fuzz ${ARCHE_ROOT}/tests/fuzz/tape_fuzz.cpp arche_tape)
# The VMM's VM.toml, --disk/--net specs and control requests (hv/ brings toml++).
add_subdirectory(${ARCHE_ROOT}/hv hv)
fuzz_target(hv_fuzz ${ARCHE_ROOT}/tests/fuzz/hv_fuzz.cpp arche_hv)
# The ext2/3/4 and NTFS wrappers of volume/ on crafted volumes.
fuzz_target(ext_fuzz ${ARCHE_ROOT}/tests/fuzz/ext_fuzz.cpp arche_volume)
fuzz_target(ntfs_fuzz ${ARCHE_ROOT}/tests/fuzz/ntfs_fuzz.cpp arche_volume)
# The messages of `p2v send` / `receive` (convert/ needs volume/ and libsodium).
add_subdirectory(${ARCHE_ROOT}/convert convert)
fuzz_target(p2v_wire_fuzz ${ARCHE_ROOT}/tests/fuzz/p2v_wire_fuzz.cpp arche_convert)
