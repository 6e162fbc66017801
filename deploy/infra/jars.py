"""Fetch the server jars with Maven into a cache outside git (one copy per machine, per pom content)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from deploy.infra.errors import InfraError
from core.settings import Settings

MIN_JAVA = 17  # Kafka 4.x brokers
MIN_JAVA_REGISTRY = 21  # Apicurio 3.3 is compiled for Java 21 (class file 65)


@dataclass(frozen=True)
class ServerJars:
    java: str
    registry_java: str
    kafka_dir: Path
    registry_jar: Path
    log4j_config: Path
    kafka_version: str
    registry_version: str

    @property
    def kafka_classpath(self) -> str:
        return f"{self.kafka_dir}/*"


def java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    return int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)


def _java_candidates() -> list[str]:
    seen, out = set(), []
    homes = [os.environ.get("LIAISON_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    paths = [str(Path(h) / "bin" / "java") for h in homes if h]
    paths.append(shutil.which("java") or "")
    paths += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java"))
    for p in paths:
        if p and Path(p).exists():
            real = str(Path(p).resolve())
            if real not in seen:
                seen.add(real)
                out.append(p)
    return out


def find_java(min_major: int, needed_by: str) -> str:
    """The first Java of at least `min_major`: LIAISON_JAVA_HOME, JAVA_HOME, PATH, then /usr/lib/jvm/*."""
    found = []
    for java in _java_candidates():
        major = java_major(java)
        if major is not None and major >= min_major:
            return java
        found.append(f"{java} ({major})")
    if not found:
        raise InfraError(f"java not found: {needed_by} needs Java {min_major} or newer "
                         f"(install a JDK, or set LIAISON_JAVA_HOME)")
    raise InfraError(f"Java too old: {needed_by} needs Java {min_major} or newer, found only "
                     f"{', '.join(found)}; install a newer JDK or set LIAISON_JAVA_HOME")


def check_java() -> str:
    return find_java(MIN_JAVA, "the Kafka broker")


def pom_properties(pom: Path) -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(pom).getroot().find("m:properties", ns)
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in props}


def ensure_jars(settings: Settings, log=print) -> ServerJars:
    java = check_java()
    pom = settings.deploy_dir / "maven" / "pom.xml"
    props = pom_properties(pom)
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    root = Path(settings.cache_dir) / f"servers-{digest}"
    kafka_dir = root / "jars"
    reg_dir = root / "apicurio"
    done = root / ".complete"
    if not done.exists():
        mvn = shutil.which("mvn")
        if not mvn:
            raise InfraError("the server jars are not cached yet and Maven (mvn) is not on PATH: "
                             "install Maven (apt-get install maven)")
        t0 = time.monotonic()
        log(f"fetching Kafka {props['kafka.version']} and Apicurio {props['apicurio.version']} "
            f"with Maven into {root} (first start only)")
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={tmp / 'jars'}", "-DincludeScope=runtime"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            detail = next((ln for ln in res.stdout.splitlines() if "[ERROR]" in ln), res.stdout[-300:])
            raise InfraError(f"Maven fetch of the server jars failed (exit {res.returncode}): {detail.strip()}")
        archives = list((tmp / "jars").glob("apicurio-registry-app-*.tar.gz"))
        if len(archives) != 1:
            raise InfraError(f"Maven did not deliver the Apicurio archive into {tmp / 'jars'}")
        with tarfile.open(archives[0]) as tar:
            tar.extractall(tmp / "apicurio", filter="tar")
        archives[0].unlink()
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        done.write_text(f"fetched in {time.monotonic() - t0:.1f}s\n")
        log(f"server jars cached in {time.monotonic() - t0:.1f}s")
    registry_jar = reg_dir / "quarkus-run.jar"
    if not registry_jar.exists():
        raise InfraError(f"{registry_jar} missing: delete {root} and run `liaison infra up` again")
    registry_java = find_java(MIN_JAVA_REGISTRY, f"Apicurio Registry {props['apicurio.version']}")
    return ServerJars(java, registry_java, kafka_dir, registry_jar, settings.deploy_dir / "kafka" / "log4j2.properties",
                      props["kafka.version"], props["apicurio.version"])
