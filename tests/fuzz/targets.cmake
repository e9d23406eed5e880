# The fuzz targets: one line each. Built by the clang project in project/.
fuzz_target(qcow2_fuzz ${ARCHE_ROOT}/tests/fuzz/qcow2_fuzz.cpp arche_image)
# The backup repository's parsers (backup/ needs libsodium; it brings its own CMake).
add_subdirectory(${ARCHE_ROOT}/backup backup)
fuzz_target(backup_fuzz ${ARCHE_ROOT}/tests/fuzz/backup_fuzz.cpp arche_backup)
fuzz_target(vmdk_fuzz ${ARCHE_ROOT}/tests/fuzz/vmdk_fuzz.cpp arche_image)
fuzz_target(vhd_fuzz ${ARCHE_ROOT}/tests/fuzz/vhd_fuzz.cpp arche_image)
fuzz_target(vhdx_fuzz ${ARCHE_ROOT}/tests/fuzz/vhdx_fuzz.cpp arche_image)
fuzz_target(vdi_fuzz ${ARCHE_ROOT}/tests/fuzz/vdi_fuzz.cpp arche_image)
# Our own file system readers (volume/fat_*, volume/xfs_*), built from their
# sources so the fuzz project needs none of the libraries the rest of volume/ uses.
add_library(arche_fsreaders_fuzz STATIC
  ${ARCHE_ROOT}/volume/filesystem.cpp ${ARCHE_ROOT}/volume/reader_support.cpp
  ${ARCHE_ROOT}/volume/fat_format.cpp ${ARCHE_ROOT}/volume/fat_table.cpp ${ARCHE_ROOT}/volume/fat_filesystem.cpp
  ${ARCHE_ROOT}/volume/xfs_format.cpp ${ARCHE_ROOT}/volume/xfs_volume.cpp ${ARCHE_ROOT}/volume/xfs_dir.cpp
  ${ARCHE_ROOT}/volume/xfs_filesystem.cpp)
target_link_libraries(arche_fsreaders_fuzz PUBLIC arche_image arche_core)
fuzz_target(fat_fuzz ${ARCHE_ROOT}/tests/fuzz/fat_fuzz.cpp arche_fsreaders_fuzz)
fuzz_target(xfs_fuzz ${ARCHE_ROOT}/tests/fuzz/xfs_fuzz.cpp arche_fsreaders_fuzz)
