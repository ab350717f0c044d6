# Sourced by bin/dpserve and the repository's ./dpserve: sets DPSERVE_JAVA to a java >= 25
# (dpserve needs JDK 25: the final FFM API, Unicode 16 tables, the Vector API).
# Looks at DPSERVE_JAVA_HOME, JAVA_HOME, the java on PATH, then /usr/lib/jvm/* and /opt/*.
dpserve_java_feature() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}
dpserve_find_java() {
  local candidates=() c v
  [ -n "${DPSERVE_JAVA_HOME:-}" ] && candidates+=("$DPSERVE_JAVA_HOME/bin/java")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  for c in /usr/lib/jvm/*25* /usr/lib/jvm/* /opt/*jdk* /opt/java/*; do
    [ -x "$c/bin/java" ] && candidates+=("$c/bin/java")
  done
  for c in "${candidates[@]}"; do
    [ -x "$c" ] || continue
    v=$(dpserve_java_feature "$c")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null; then
      DPSERVE_JAVA="$c"
      DPSERVE_JAVA_HOME_FOUND="$(cd "$(dirname "$c")/.." && pwd)"
      return 0
    fi
  done
  echo "dpserve: no JDK 25 found. dpserve needs Java 25 or newer (e.g. Eclipse Temurin 25)." >&2
  echo "dpserve: looked at \$DPSERVE_JAVA_HOME, \$JAVA_HOME, the java on PATH, /usr/lib/jvm/* and /opt/*." >&2
  echo "dpserve: install a JDK 25 and set JAVA_HOME to it." >&2
  return 1
}
