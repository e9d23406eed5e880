# The fuzz targets: one line each. Built by the clang project in project/.
fuzz_target(qcow2_fuzz ${ARCHE_ROOT}/tests/fuzz/qcow2_fuzz.cpp arche_image)
# The backup repository's parsers (backup/ needs libsodium; it brings its own CMake).
add_subdirectory(${ARCHE_ROOT}/backup backup)
fuzz_target(backup_fuzz ${ARCHE_ROOT}/tests/fuzz/backup_fuzz.cpp arche_backup)
