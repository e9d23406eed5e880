# cmake -DARCHE=path/to/arche -DSHELL_NAME=bash|zsh -DOUT=file -P write_completion.cmake
# Writes `arche completion SHELL` into OUT (custom commands have no redirection).
execute_process(COMMAND ${ARCHE} completion ${SHELL_NAME} OUTPUT_FILE ${OUT} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "arche completion ${SHELL_NAME} failed: ${result}")
endif()
