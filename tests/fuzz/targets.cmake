# The fuzz targets: one line each. Built by the clang project in project/.
fuzz_target(qcow2_fuzz ${ARCHE_ROOT}/tests/fuzz/qcow2_fuzz.cpp arche_image)
fuzz_target(vmdk_fuzz ${ARCHE_ROOT}/tests/fuzz/vmdk_fuzz.cpp arche_image)
