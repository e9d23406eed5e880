# shellcheck shell=bash disable=SC2034
# The fuzz targets and the largest input each takes (libFuzzer's -max_len; the
# harness refuses bigger ones). Sourced by run_fuzz.sh (the test suite) and
# scripts/fuzz.sh (campaigns). A new target: a line in targets.cmake, here, a
# case in seeds.sh, and a fuzz_test() in CMakeLists.txt (docs/testing.md).
fuzz_targets="qcow2_fuzz vmdk_fuzz vhd_fuzz vhdx_fuzz vdi_fuzz mirror_fuzz partition_fuzz lvm_fuzz fat_fuzz xfs_fuzz
  ext_fuzz ntfs_fuzz backup_fuzz s3_fuzz sftp_fuzz tape_fuzz hv_fuzz p2v_wire_fuzz"
fuzz_max_len() {
  case "$1" in
  qcow2_fuzz|vmdk_fuzz|vhd_fuzz|vhdx_fuzz|vdi_fuzz|mirror_fuzz) echo 65536 ;;  # fuzz_common.h kMaxImageInput
  partition_fuzz|lvm_fuzz|fat_fuzz|xfs_fuzz|ext_fuzz|ntfs_fuzz) echo 262144 ;;  # whole small disks and volumes
  backup_fuzz|s3_fuzz|sftp_fuzz|tape_fuzz|hv_fuzz|p2v_wire_fuzz) echo 65536 ;;
  *) return 1 ;;
  esac
}
# The parser files a target is there for: what scripts/fuzz-coverage.sh reports.
fuzz_sources() {
  case "$1" in
  qcow2_fuzz) echo image/qcow2 ;;
  vmdk_fuzz) echo image/vmdk image/ova/ovf.cpp image/ova/tar_index.cpp ;;
  vhd_fuzz) echo image/vhd ;;
  vhdx_fuzz) echo image/vhdx ;;
  vdi_fuzz) echo image/vdi ;;
  mirror_fuzz) echo image/mirror ;;
  partition_fuzz) echo volume/gpt.cpp volume/mbr.cpp volume/partition_table.cpp volume/probe.cpp ;;
  lvm_fuzz) echo volume/lvm_label.cpp volume/lvm_metadata.cpp volume/lvm_volume_group.cpp ;;
  fat_fuzz) echo volume/fat_filesystem.cpp volume/fat_format.cpp volume/fat_table.cpp ;;
  xfs_fuzz) echo volume/xfs_dir.cpp volume/xfs_filesystem.cpp volume/xfs_format.cpp volume/xfs_volume.cpp ;;
  ext_fuzz) echo volume/ext_io.cpp volume/ext_journal.cpp volume/ext_reader.cpp ;;
  ntfs_fuzz) echo volume/ntfs_reader.cpp ;;
  backup_fuzz) echo backup/key_slot.cpp backup/repository.cpp backup/pack.cpp backup/index.cpp backup/tree.cpp \
                    backup/chunk_list.cpp backup/snapshot.cpp backup/lock.cpp backup/frame.cpp backup/object.cpp \
                    backup/fastcdc.cpp ;;
  s3_fuzz) echo backup/s3_xml.cpp backup/s3_http.cpp backup/s3_credentials.cpp ;;
  sftp_fuzz) echo backup/sftp_packet.cpp backup/sftp_client.cpp ;;
  tape_fuzz) echo tape/record.cpp tape/catalog.cpp tape/media.cpp ;;
  hv_fuzz) echo hv/config.cpp hv/control.cpp ;;
  p2v_wire_fuzz) echo convert/p2v_wire.cpp ;;
  *) return 1 ;;
  esac
}
# The sanitizer options a target runs with (sets ASAN_OPTIONS and LSAN_OPTIONS):
# tests/fuzz/lsan.supp names leaks of the system's libraries that arche cannot free,
# and the targets on those libraries (not built with frame pointers) unwind
# allocations the slow way, so that a stack reaches the library's function the
# suppression names instead of stopping in its malloc wrapper.
# Called once per target in a loop: each call starts again from the caller's own
# ASAN_OPTIONS, kept when this file is sourced.
fuzz_caller_asan_options=${ASAN_OPTIONS-}
fuzz_sanitizer_env() {
  export LSAN_OPTIONS="suppressions=$(dirname "${BASH_SOURCE[0]}")/lsan.supp:print_suppressions=0"
  local extra=
  case "$1" in
  ntfs_fuzz) extra=fast_unwind_on_malloc=0 ;;
  esac
  export ASAN_OPTIONS="${extra}${extra:+${fuzz_caller_asan_options:+:}}${fuzz_caller_asan_options}"
}
