# package.cmake -- what an operator installs besides the libraries: the systemd unit and its
# environment example (deploy/systemd), the Python package function workers run, and a Debian
# package of the whole install (`cpack -G DEB` in the build folder).
#
# The unit is installed with ExecStart naming the server where the install puts it, the prefix
# being the one of the install (`cmake --install --prefix` may change it); the package installs
# to /usr, so its unit is deploy/systemd/aside.service as written.

set(ASIDE_UNIT_SOURCE "${PROJECT_SOURCE_DIR}/deploy/systemd/aside.service")
install(CODE "
  file(READ \"${ASIDE_UNIT_SOURCE}\" unit)
  string(REPLACE \"ExecStart=/usr/bin/aside-server\"
         \"ExecStart=\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/aside-server\" unit \"\${unit}\")
  set(dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  message(STATUS \"Installing: \${dir}/aside.service\")
  file(MAKE_DIRECTORY \"\${dir}\")
  file(WRITE \"\${dir}/aside.service\" \"\${unit}\")
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${dir}/aside.service\")")
install(FILES deploy/systemd/aside.env DESTINATION ${CMAKE_INSTALL_DATADIR}/aside)

# The Python package the function workers run (`python -m aside.worker`), the server's own
# version of it, in a folder of aside's own: the installed server finds it from its own path and
# puts it first on its workers' PYTHONPATH (server/function_python.c), so ASIDE_PYTHON may be
# any Python with pandas, pyarrow and requests. Sources only: bytecode is the Python's business.
install(DIRECTORY clients/python/aside/ DESTINATION ${CMAKE_INSTALL_LIBDIR}/aside/python/aside
        FILES_MATCHING PATTERN "*.py" PATTERN "py.typed" PATTERN "__pycache__" EXCLUDE)
set_property(SOURCE src/server/function_python.c APPEND PROPERTY COMPILE_DEFINITIONS
             ASIDE_INSTALL_LIBDIR="${CMAKE_INSTALL_LIBDIR}")

# libduckdb, which Debian does not package, beside the libraries in a folder of aside's own; the
# installed server and libaside.so look for it there ($ORIGIN), after the folder they were
# linked with (which the build tree's programs use, and which another machine lacks).
install(FILES "${DUCKDB_LIB}" DESTINATION ${CMAKE_INSTALL_LIBDIR}/aside)
get_target_property(ASIDE_SERVER_RPATH aside-server INSTALL_RPATH)
set_target_properties(aside-server PROPERTIES INSTALL_RPATH
                      "${ASIDE_SERVER_RPATH};$ORIGIN/../${CMAKE_INSTALL_LIBDIR}/aside")
get_target_property(ASIDE_SHARED_RPATH aside_shared INSTALL_RPATH)
set_target_properties(aside_shared PROPERTIES INSTALL_RPATH "${ASIDE_SHARED_RPATH};$ORIGIN/aside")

# The Debian package: everything `cmake --install` puts under /usr. Before it is built,
# package-stage.cmake makes its programs find libduckdb through $ORIGIN alone (the build
# folder means nothing on another machine) and strips libduckdb; install --strip does the rest.
set(ASIDE_PACKAGE_MAINTAINER "aside maintainers <maintainers@aside.example.org>"
    CACHE STRING "Maintainer field of the Debian package")
string(TIMESTAMP ASIDE_PACKAGE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(deploy/debian/changelog.in "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog" @ONLY)
add_custom_command(OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog.gz"
  COMMAND gzip -9nkf "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog"
  DEPENDS "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog" VERBATIM)
add_custom_target(aside-package-changelog ALL DEPENDS "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog.gz")
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/deploy/changelog.gz" deploy/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME aside)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "cache-aside data server and embeddable cache library")
set(CPACK_PACKAGE_DESCRIPTION "aside keeps a fast copy of the files of a system of record
(an S3 bucket or a directory) in memory and on a crash-safe disk tier, and
serves them over HTTP; it understands DataFrames. This package holds
aside-server and its systemd unit, libaside (shared and static, aside.h,
aside.pc, a CMake package) and the DuckDB library they use.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PRE_BUILD_SCRIPTS "${PROJECT_SOURCE_DIR}/cmake/package-stage.cmake")
set(CPACK_ASIDE_STRIP "${CMAKE_STRIP}")
set(CPACK_ASIDE_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
set(CPACK_ASIDE_DUCKDB_LIB_DIR "${DUCKDB_LIB_DIR}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ASIDE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${DUCKDB_LIB_DIR}")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/deploy/debian/triggers")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
include(CPack)
