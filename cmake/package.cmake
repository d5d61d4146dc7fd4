# package.cmake -- what an operator installs besides the libraries: the systemd unit and its
# environment example (deploy/systemd), and a Debian package of the whole install (`cpack -G
# DEB` in the build folder).
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
