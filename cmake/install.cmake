# What `make install` (cmake --install) puts where, and the files generated for it
# at build time from the built binary, which walks its own command tree: one man
# page per command group and the bash and zsh completions. A command group added
# later appears in them without any change here.
include(GNUInstallDirs)

set(ARCHE_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/zsh/site-functions" CACHE STRING
    "Where the zsh completion goes, relative to the prefix (Debian's package: share/zsh/vendor-completions)")

set(ARCHE_GENERATED_SHARE ${CMAKE_BINARY_DIR}/generated/share)
set(ARCHE_MAN_DIR ${ARCHE_GENERATED_SHARE}/man)
set(ARCHE_COMPLETION_DIR ${ARCHE_GENERATED_SHARE}/completion)
add_custom_command(
  OUTPUT ${ARCHE_MAN_DIR}/arche.1 ${ARCHE_COMPLETION_DIR}/arche.bash ${ARCHE_COMPLETION_DIR}/_arche
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${ARCHE_MAN_DIR}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ARCHE_MAN_DIR} ${ARCHE_COMPLETION_DIR}
  COMMAND $<TARGET_FILE:arche> manpage ${ARCHE_MAN_DIR}
  COMMAND ${CMAKE_COMMAND} -DARCHE=$<TARGET_FILE:arche> -DSHELL_NAME=bash -DOUT=${ARCHE_COMPLETION_DIR}/arche.bash
          -P ${CMAKE_SOURCE_DIR}/cmake/write_completion.cmake
  COMMAND ${CMAKE_COMMAND} -DARCHE=$<TARGET_FILE:arche> -DSHELL_NAME=zsh -DOUT=${ARCHE_COMPLETION_DIR}/_arche
          -P ${CMAKE_SOURCE_DIR}/cmake/write_completion.cmake
  DEPENDS arche ${CMAKE_SOURCE_DIR}/cmake/write_completion.cmake
  COMMENT "Generating man pages and shell completion from arche's command tree")
add_custom_target(arche_generated_docs ALL
  DEPENDS ${ARCHE_MAN_DIR}/arche.1 ${ARCHE_COMPLETION_DIR}/arche.bash ${ARCHE_COMPLETION_DIR}/_arche)

install(TARGETS arche RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${ARCHE_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1")
install(FILES ${ARCHE_COMPLETION_DIR}/arche.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME arche)
install(FILES ${ARCHE_COMPLETION_DIR}/_arche DESTINATION ${ARCHE_ZSH_COMPLETION_DIR})
# The documentation and the examples (VM.toml; job files and others as they come:
# everything in examples/ is installed).
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
