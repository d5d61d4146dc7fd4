# package-stage.cmake -- run by CPack on the staged install before the Debian package is made
# (CPACK_PRE_BUILD_SCRIPTS; package.cmake sets the CPACK_ASIDE_* variables it reads).
#
# The installed programs and libaside.so look for libduckdb first in the folder they were
# linked with, then beside themselves ($ORIGIN); a package keeps the second alone, and aside.pc's
# static link names the packaged libduckdb too. libduckdb, installed as a file rather than a
# target, is stripped here like the targets.
file(GLOB_RECURSE staged_duckdb "${CPACK_TEMPORARY_DIRECTORY}/*/${CPACK_ASIDE_LIBDIR}/aside/libduckdb.so")
file(GLOB_RECURSE staged_server "${CPACK_TEMPORARY_DIRECTORY}/*/bin/aside-server")
file(GLOB_RECURSE staged_libaside "${CPACK_TEMPORARY_DIRECTORY}/*/${CPACK_ASIDE_LIBDIR}/libaside.so.*.*.*")
foreach(file ${staged_server})
  file(RPATH_SET FILE "${file}" NEW_RPATH "$ORIGIN/../${CPACK_ASIDE_LIBDIR}/aside")
endforeach()
foreach(file ${staged_libaside})
  file(RPATH_SET FILE "${file}" NEW_RPATH "$ORIGIN/aside")
endforeach()
foreach(file ${staged_duckdb})
  execute_process(COMMAND "${CPACK_ASIDE_STRIP}" --strip-unneeded "${file}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "could not strip ${file}")
  endif()
endforeach()
file(GLOB_RECURSE staged_pc "${CPACK_TEMPORARY_DIRECTORY}/*/${CPACK_ASIDE_LIBDIR}/pkgconfig/aside.pc")
foreach(file ${staged_pc})
  file(READ "${file}" pc)
  string(REPLACE "${CPACK_ASIDE_DUCKDB_LIB_DIR}" "\${libdir}/aside" pc "${pc}")
  file(WRITE "${file}" "${pc}")
endforeach()
message(STATUS "aside: staged programs find libduckdb through $ORIGIN (${staged_server})")
