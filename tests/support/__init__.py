"""What the tests and the benchmarks share, one module a kind: nothing here is a test.

servers    a real gunicorn as a deployment starts it (start_gunicorn, Server, gunicorn_command),
           wait_until_serving, free_port, http_request, eventually, REPO
fronts     the three ways to the origin: straight, through deploy/nginx.conf, deploy/varnish.vcl
upstreams  remote originals on loopback: a misbehaving HTTP server, moto's S3
images     images encoded here with OpenCV, decode, originals in every format, write and cut
bombs      hostile originals: decompression bombs, headers that lie
variants   rendered variants made of bytes, to fill a cache without the pipeline
load       HTTP load: bursts, closed-loop storms, a hit prober in a process of its own
browser    Debian's chromium through Playwright, axe-core, browsers' Accept headers
cli        python -m proxy's commands run in this process (tests/conftest.py's ``cli`` fixture)
containers the Dockerfile's image built by podman on a debootstrapped Debian, its command run by chroot

tests/ and bench/ import these modules (``tests.support.servers``...) and nothing else of each
other (tests/test_layout.py). This face imports none of them: each costs only who uses it.
"""
