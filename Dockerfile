# falcopy image: the node agent (`falcopy agent`, the default) and the operator
# (`falcopy operator`) from one image.
#
#   docker build --build-arg BASE_IMAGE=falcopy-base:bookworm -t falcopy:0.1.0 .
#
# BASE_IMAGE must be Debian bookworm (or a derivative with its packages);
# scripts/build-base-image.sh makes one with debootstrap where nothing can be pulled.
#
# The BPF object is CO-RE: vmlinux.h only supplies type definitions, and libbpf
# relocates every field access against the running node's BTF when the probe
# loads, so an object built on any BTF-enabled build machine runs on other
# kernels (>= 5.8, CONFIG_DEBUG_INFO_BTF=y).  vmlinux.h is generated from the
# build machine's /sys/kernel/btf/vmlinux; where that does not exist (a builder
# VM without BTF), put a BTF file in the build context and pass its path
# relative to agent/bpf, e.g. --build-arg VMLINUX_BTF=btf/vmlinux.
ARG BASE_IMAGE=debian:bookworm-slim

# --- BPF object ----------------------------------------------------------------
FROM ${BASE_IMAGE} AS bpf
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang llvm bpftool libbpf-dev linux-libc-dev make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src/agent/bpf
COPY agent/bpf/ ./
ARG VMLINUX_BTF=/sys/kernel/btf/vmlinux
RUN make VMLINUX_BTF="${VMLINUX_BTF}" && ls -l falcopy.bpf.o

# --- Python virtual environment ----------------------------------------------------
FROM ${BASE_IMAGE} AS python
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates gcc python3-dev \
    && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, pass the build host's local CAs (PEM), e.g.
# --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)";
# they are trusted in this build stage only, never in the runtime image.
ARG EXTRA_CA_CERTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" >/usr/local/share/ca-certificates/build-extra.crt \
        && update-ca-certificates >/dev/null; \
    fi \
    && python3 -m venv /opt/falcopy \
    && /opt/falcopy/bin/pip install --quiet "setuptools>=69" wheel
WORKDIR /src
# dependencies first, from pyproject.toml alone: a source change reuses this layer
COPY pyproject.toml setup.py ./
# (+ Cython, the `accel` extra, for the compiled fast loop below: uninstalled after it)
RUN /opt/falcopy/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
    && /opt/falcopy/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['accel']))" >/tmp/accel.txt \
    && /opt/falcopy/bin/pip install --quiet -r /tmp/requirements.txt -r /tmp/accel.txt
COPY README.md ./
COPY falcopy/ falcopy/
COPY agent/ agent/
COPY operator/ operator/
COPY scripts/build_accel.py scripts/
# the compiled fast loop (make accel): Cython and the compiler stay in this stage, the
# extensions (and their sources' digests) go into the package beside their .py
RUN /opt/falcopy/bin/python scripts/build_accel.py \
    && /opt/falcopy/bin/pip uninstall --quiet --yes -r /tmp/accel.txt
COPY --from=bpf /src/agent/bpf/falcopy.bpf.o /src/agent/bpf/falcopy-extra.bpf.o \
     /src/agent/bpf/falcopy-compat.bpf.o /src/agent/bpf/falcopy-extra-compat.bpf.o /src/agent/bpf/syscalls.tbl \
     agent/bpf/
RUN /opt/falcopy/bin/pip install --quiet --no-deps --no-build-isolation . \
    && /opt/falcopy/bin/python -P -c "import falcopy.agent.kernel.probe as p; assert p.DEFAULT_OBJ.is_file(), p.DEFAULT_OBJ" \
    && /opt/falcopy/bin/python -P -c "import importlib, falcopy.agent.accel as a; assert all(a.is_compiled(importlib.import_module(m)) for m in a.ACCELERATED)" \
    && /opt/falcopy/bin/pip uninstall --quiet --yes pip setuptools wheel

# --- runtime ----------------------------------------------------------------------
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libbpf1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=python /opt/falcopy /opt/falcopy
COPY rules/ /usr/share/falcopy/rules/
COPY config/falcopy.yaml /etc/falcopy/falcopy.yaml
ENV PATH=/opt/falcopy/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FALCOPY_RULES=/usr/share/falcopy/rules \
    FALCOPY_OPERATOR_DEFAULT_RULES=/usr/share/falcopy/rules
LABEL org.opencontainers.image.title="falcopy" \
      org.opencontainers.image.description="Runtime security for Kubernetes nodes that speaks Falco's rule language" \
      org.opencontainers.image.licenses="Apache-2.0"
# No USER: the agent needs root (BPF, the host's /proc); the operator's pod
# sets runAsNonRoot in its securityContext.
WORKDIR /tmp
ENTRYPOINT ["falcopy"]
CMD ["agent"]
