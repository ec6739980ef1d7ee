# ctest "install: find_package(lowrank) ...": installs the built library into WORK/prefix (a copy:
# nothing is rebuilt), configures tests/consumer against that prefix alone, builds and runs it.
# cmake -D BUILD=<lowrank build> -D SOURCE=<tests/consumer> -D WORK=<scratch folder>
#       [-D GENERATOR=Ninja] [-D CXX=<compiler>] -P tests/consumer/check.cmake
foreach(var BUILD SOURCE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake: -D ${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer check: ${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "consumer check: ${what}: ok")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${WORK}/prefix")
set(gen_args "")
if(GENERATOR)
  list(APPEND gen_args -G "${GENERATOR}")
endif()
if(CXX)
  list(APPEND gen_args "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
# Only the temporary prefix: a lowrank found anywhere else would make this test pass for nothing.
run("configure tests/consumer" ${CMAKE_COMMAND} -S "${SOURCE}" -B "${WORK}/build" ${gen_args}
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${WORK}/prefix")
run("build tests/consumer" ${CMAKE_COMMAND} --build "${WORK}/build")
run("run the consumer" "${WORK}/build/consumer")
message(STATUS "${last_output}")
