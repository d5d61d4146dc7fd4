# The two commands a new machine needs:
#   make run    install what is missing, build, start aside-server on 127.0.0.1:5000
#   make test   install what is missing, build (plain, sanitized, fuzzers), run every test suite
#   make fuzz   the fuzzers alone, FUZZ_SECONDS (default 300) each
#   make image  the container images (deploy/container): localhost/aside:latest (with the
#               functions' Python) and localhost/aside:server, with buildah
.PHONY: deps build build-asan build-fuzz run test fuzz image bench bench-s3 bench-frames bench-locality bench-functions bench-collections bench-startup bench-trace clean

deps:
	scripts/install-deps.sh

build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	ninja -C build

build-asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DASIDE_SANITIZE=ON >/dev/null
	ninja -C build-asan

# libFuzzer harnesses (tests/fuzz): clang, ASan and UBSan, every module instrumented
build-fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DASIDE_FUZZ=ON >/dev/null
	ninja -C build-fuzz fuzzers

run: build
	ASIDE_PYTHON=$${ASIDE_PYTHON:-$(CURDIR)/.venv/bin/python} ./build/aside-server

test: build build-asan build-fuzz
	scripts/test.sh

fuzz: build-fuzz
	scripts/fuzz.sh $${FUZZ_SECONDS:-300}

image: deps
	scripts/image.sh --target full
	scripts/image.sh --target server

bench: build
	bench/http_vs_nginx.sh

bench-s3: build
	.venv/bin/python bench/s3_cold_load.py

bench-frames: build
	.venv/bin/python bench/frames_vs_pandas.py

bench-locality: build
	.venv/bin/python bench/locality.py

bench-functions: build
	.venv/bin/python bench/functions.py

bench-collections: build
	.venv/bin/python bench/collections_vs_redis.py

bench-startup: build
	.venv/bin/python bench/startup.py

bench-trace: build
	build/aside-trace

clean:
	rm -rf build build-asan build-fuzz build-image
