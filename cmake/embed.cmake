# embed.cmake -- libaside as a library other programs build against.
#
# The target aside (CMakeLists.txt) compiles every module once, position independent and with
# hidden visibility: only the functions include/aside.h marks ASIDE_API are visible outside the
# code that defines them. From its objects come the two installed libraries:
#
#   libaside.so  linked from the objects: its dynamic symbol table holds aside_* only;
#   libaside.a   one object, the partial link (ld -r) of them all, whose hidden symbols are then
#                made local (objcopy --localize-hidden): buf_init, table_create, entry_find and
#                every other internal name are resolved inside the object and can no longer
#                collide with a host program's; its global symbols are aside_* only.
#
# The programs of this project (the server, tests, tools) link aside itself: they use internal
# modules. Installed with them: aside.h, aside.pc (pkg-config) and a CMake package that defines
# aside::aside (the shared library). Installed programs and libaside.so find libduckdb through
# their RPATH (DuckDB is not a system library); the install test (tests/install) checks all of
# it from a temporary prefix.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set_target_properties(aside PROPERTIES OUTPUT_NAME aside_internal POSITION_INDEPENDENT_CODE ON
                      C_VISIBILITY_PRESET hidden)
target_compile_definitions(aside PRIVATE ASIDE_BUILDING)

# Where installed programs and libaside.so find libduckdb: the folder they were linked with.
# The targets below get their install RPATH in the build tree already (BUILD_WITH_INSTALL_RPATH):
# a build RPATH that installing rewrites would be padded with an empty entry, which the loader
# takes for the current folder.
get_filename_component(DUCKDB_LIB_DIR "${DUCKDB_LIB}" DIRECTORY)

# The shared library.
add_library(aside_shared SHARED $<TARGET_OBJECTS:aside>)
set_target_properties(aside_shared PROPERTIES
  OUTPUT_NAME aside VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  LINKER_LANGUAGE C INSTALL_RPATH "${DUCKDB_LIB_DIR}" BUILD_WITH_INSTALL_RPATH ON)
target_include_directories(aside_shared INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)
target_link_libraries(aside_shared PRIVATE $<TARGET_PROPERTY:aside,INTERFACE_LINK_LIBRARIES>)
target_link_options(aside_shared PRIVATE -Wl,--no-undefined)

# The static library: one localised object.
set(ASIDE_PUBLIC_OBJECT "${CMAKE_CURRENT_BINARY_DIR}/aside_public.o")
find_program(OBJCOPY NAMES objcopy REQUIRED)
add_custom_command(OUTPUT "${ASIDE_PUBLIC_OBJECT}"
  COMMAND "${CMAKE_LINKER}" -r -o "${ASIDE_PUBLIC_OBJECT}" "$<TARGET_OBJECTS:aside>"
  COMMAND "${OBJCOPY}" --localize-hidden "${ASIDE_PUBLIC_OBJECT}"
  DEPENDS aside
  COMMENT "Linking libaside's objects into one, internal names made local"
  COMMAND_EXPAND_LISTS VERBATIM)
add_library(aside_static STATIC "${ASIDE_PUBLIC_OBJECT}")
set_target_properties(aside_static PROPERTIES OUTPUT_NAME aside LINKER_LANGUAGE C)

install(TARGETS aside_shared aside_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/aside.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The linker flags of the libraries the aside target links, for aside.pc's static link.
function(aside_link_flags out)
  get_target_property(libraries aside INTERFACE_LINK_LIBRARIES)
  set(flags "")
  foreach(library ${libraries})
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" library "${library}")
    if(library STREQUAL "Threads::Threads")
      list(APPEND flags -pthread)
    elseif(library MATCHES "^PkgConfig::(.+)$")
      foreach(flag ${${CMAKE_MATCH_1}_LDFLAGS})
        string(REGEX REPLACE "^-L" "" dir "${flag}")
        if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
          list(APPEND flags "${flag}")
        endif()
      endforeach()
    elseif(IS_ABSOLUTE "${library}")
      get_filename_component(dir "${library}" DIRECTORY)
      get_filename_component(name "${library}" NAME_WE)
      string(REGEX REPLACE "^lib" "" name "${name}")
      if(NOT dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
        list(APPEND flags "-L${dir}" "-Wl,-rpath,${dir}")
      endif()
      list(APPEND flags "-l${name}")
    else()
      message(FATAL_ERROR "aside.pc: no linker flags known for ${library}")
    endif()
  endforeach()
  string(JOIN " " flags ${flags})
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

# pkg-config: aside.pc finds its prefix from its own folder, so the installed tree can move.
# Libs.private (pkg-config --static) lists what libaside.a needs, each library as the system
# has it. (Requires.private would name their pkg-config modules instead, and --static would
# then add their own private libraries too, as for a fully static program: libcurl's name a
# dozen that Debian ships no link library for.)
aside_link_flags(ASIDE_PC_LIBS_PRIVATE)
file(RELATIVE_PATH ASIDE_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" ASIDE_PC_TO_PREFIX "${ASIDE_PC_TO_PREFIX}")
configure_file(cmake/aside.pc.in "${CMAKE_CURRENT_BINARY_DIR}/aside.pc" @ONLY)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/aside.pc"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake: find_package(aside) defines aside::aside.
set(ASIDE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/aside)
configure_package_config_file(cmake/asideConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/asideConfig.cmake" INSTALL_DESTINATION ${ASIDE_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/asideConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/asideConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/asideConfigVersion.cmake"
        DESTINATION ${ASIDE_CMAKE_DIR})

# Install programs that run from the prefix as from the build tree. One that links libaside.so
# (an example) finds it in the prefix's library folder, or beside it in the build tree, and
# libduckdb through it; one that links aside (aside-server) needs libduckdb's folder.
function(aside_install_programs)
  foreach(program ${ARGN})
    get_target_property(libraries ${program} LINK_LIBRARIES)
    set(rpath "${DUCKDB_LIB_DIR}")
    if(aside_shared IN_LIST libraries)
      set(rpath "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}" "$ORIGIN")
    endif()
    set_target_properties(${program} PROPERTIES INSTALL_RPATH "${rpath}"
                          BUILD_WITH_INSTALL_RPATH ON)
  endforeach()
  install(TARGETS ${ARGN} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()
