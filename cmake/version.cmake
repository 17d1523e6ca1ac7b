# version.cmake: the version every program prints with --version, "forge <version> (<commit>)",
# and checkpoints record. The commit is read by cmake/write_version.cmake into one generated
# header, forge_version.h, of the interface target forge_version: at configure time and again at
# every build (the target forge_version_header), so it follows commits made after configuring.
find_package(Git QUIET)
set(FORGE_VERSION_HEADER ${CMAKE_BINARY_DIR}/generated/forge_version.h)
set(FORGE_WRITE_VERSION ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR}
    -DOUTPUT=${FORGE_VERSION_HEADER} -DVERSION=${PROJECT_VERSION} -DGIT_EXECUTABLE=${GIT_EXECUTABLE}
    -P ${CMAKE_SOURCE_DIR}/cmake/write_version.cmake)
execute_process(COMMAND ${FORGE_WRITE_VERSION})
add_custom_target(forge_version_header COMMAND ${FORGE_WRITE_VERSION}
                  BYPRODUCTS ${FORGE_VERSION_HEADER} VERBATIM)
add_library(forge_version INTERFACE)
target_include_directories(forge_version INTERFACE ${CMAKE_BINARY_DIR}/generated)
add_dependencies(forge_version forge_version_header)
