# The fuzz targets: one line each. Built by the clang project in project/.
fuzz_target(qcow2_fuzz ${ARCHE_ROOT}/tests/fuzz/qcow2_fuzz.cpp arche_image)
# The backup repository's parsers (backup/ needs libsodium; it brings its own CMake).
add_subdirectory(${ARCHE_ROOT}/backup backup)
fuzz_target(backup_fuzz ${ARCHE_ROOT}/tests/fuzz/backup_fuzz.cpp arche_backup)
fuzz_target(vmdk_fuzz ${ARCHE_ROOT}/tests/fuzz/vmdk_fuzz.cpp arche_image)
fuzz_target(vhd_fuzz ${ARCHE_ROOT}/tests/fuzz/vhd_fuzz.cpp arche_image)
fuzz_target(vhdx_fuzz ${ARCHE_ROOT}/tests/fuzz/vhdx_fuzz.cpp arche_image)
fuzz_target(vdi_fuzz ${ARCHE_ROOT}/tests/fuzz/vdi_fuzz.cpp arche_image)
fuzz_target(mirror_fuzz ${ARCHE_ROOT}/tests/fuzz/mirror_fuzz.cpp arche_image)
