// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.objects.SafeString;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code tojson} filter as transformers defines it for chat templates: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}, so
 * {@code {"a": 1, "b": [1, 2]}} with Python's spacing and float spelling, and none of Jinja2's
 * HTML escaping. Keyword arguments {@code indent}, {@code separators}, {@code sort_keys} and
 * {@code ensure_ascii} are honoured.
 */
final class JinjaToJson implements Filter {

    @Override
    public String getName() { return "tojson"; }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        return filter(var, interpreter, args, Map.of());
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object indentArg = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
        String indent = switch (indentArg) {
            case null -> null;
            case Number n -> " ".repeat(n.intValue());
            default -> indentArg.toString();
        };
        String itemSep = indent == null ? ", " : ",";
        String keySep = ": ";
        if (kwargs.get("separators") instanceof List<?> seps && seps.size() == 2) {
            itemSep = String.valueOf(seps.get(0));
            keySep = String.valueOf(seps.get(1));
        }
        Writer w = new Writer(indent, itemSep, keySep, truthy(kwargs.get("sort_keys")),
                truthy(kwargs.get("ensure_ascii")));
        w.value(var, 0);
        return w.out.toString();
    }

    private static boolean truthy(Object o) {
        return o instanceof Boolean b ? b : o != null && !"false".equalsIgnoreCase(o.toString());
    }

    private record Writer(String indent, String itemSep, String keySep, boolean sortKeys, boolean ensureAscii,
                          StringBuilder out) {
        Writer(String indent, String itemSep, String keySep, boolean sortKeys, boolean ensureAscii) {
            this(indent, itemSep, keySep, sortKeys, ensureAscii, new StringBuilder());
        }

        void value(Object v, int depth) {
            switch (v) {
                case null -> out.append("null");
                case Boolean b -> out.append(b);
                case Double d -> out.append(pythonFloat(d));
                case Float f -> out.append(pythonFloat(f.doubleValue()));
                case BigDecimal d -> out.append(pythonFloat(d.doubleValue()));
                case Number n -> out.append(n);
                case SafeString s -> string(s.getValue());
                case CharSequence s -> string(s.toString());
                case Map<?, ?> m -> object(m, depth);
                case Iterable<?> it -> {
                    List<Object> items = new ArrayList<>();
                    it.forEach(items::add);
                    array(items, depth);
                }
                case Object[] arr -> array(Arrays.asList(arr), depth);
                default -> string(v.toString());
            }
        }

        private void object(Map<?, ?> map, int depth) {
            if (map.isEmpty()) {
                out.append("{}");
                return;
            }
            Map<?, ?> entries = map;
            if (sortKeys) {
                TreeMap<String, Object> sorted = new TreeMap<>();
                map.forEach((k, val) -> sorted.put(key(k), val));
                entries = sorted;
            }
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : entries.entrySet()) {
                if (!first) out.append(itemSep);
                first = false;
                newline(depth + 1);
                string(key(e.getKey()));
                out.append(keySep);
                value(e.getValue(), depth + 1);
            }
            newline(depth);
            out.append('}');
        }

        private void array(List<?> items, int depth) {
            if (items.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) out.append(itemSep);
                newline(depth + 1);
                value(items.get(i), depth + 1);
            }
            newline(depth);
            out.append(']');
        }

        private void newline(int depth) {
            if (indent != null) out.append('\n').append(indent.repeat(depth));
        }

        /** Python turns None/True/False/number keys into their JSON spelling. */
        private static String key(Object k) {
            return switch (k) {
                case null -> "null";
                case Boolean b -> b.toString();
                default -> k.toString();
            };
        }

        private void string(String s) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < 0x20 || (ensureAscii && c > 0x7f)) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }

    /** Python's float repr: shortest round-trip digits, fixed notation for exponents -4..15. */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal bd = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = bd.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - bd.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = bd.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
    }
}
