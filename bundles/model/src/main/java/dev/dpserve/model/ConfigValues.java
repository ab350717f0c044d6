// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import java.util.List;
import java.util.Map;

/** Typed reads of config.json values (as {@link ConfigJson} gives them), with errors naming the field. */
public final class ConfigValues {

    private ConfigValues() {
    }

    /** A required integer. */
    public static int integer(Map<String, Object> c, String key) {
        Object v = c.get(key);
        if (!(v instanceof Number n)) throw new IllegalArgumentException("config." + key + " must be a number, got " + v);
        return Math.toIntExact(n.longValue());
    }

    /** {@code dflt} when absent or null; a negative default means required. */
    public static int integer(Map<String, Object> c, String key, int dflt) {
        if (c.get(key) == null) {
            if (dflt < 0) throw new IllegalArgumentException("config." + key + " is required");
            return dflt;
        }
        return integer(c, key);
    }

    /** {@code dflt} when absent or null; a NaN default means required. */
    public static double number(Map<String, Object> c, String key, double dflt) {
        Object v = c.get(key);
        if (v == null) {
            if (Double.isNaN(dflt)) throw new IllegalArgumentException("config." + key + " is required");
            return dflt;
        }
        if (!(v instanceof Number n)) throw new IllegalArgumentException("config." + key + " must be a number, got " + v);
        return n.doubleValue();
    }

    public static boolean bool(Map<String, Object> c, String key, boolean dflt) {
        Object v = c.get(key);
        return v == null ? dflt : Boolean.TRUE.equals(v);
    }

    public static String string(Map<String, Object> c, String key, String dflt) {
        Object v = c.get(key);
        return v == null ? dflt : String.valueOf(v);
    }

    /** The first of {@code architectures}, or the model type when there is none. */
    public static String architectureOf(Map<String, Object> c, String modelType) {
        Object archs = c.get("architectures");
        return archs instanceof List<?> l && !l.isEmpty() ? String.valueOf(l.getFirst()) : modelType;
    }

    /**
     * The {@code rope_scaling} object, or null when absent; IllegalArgumentException when it is not
     * an object.
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> ropeScaling(Map<String, Object> c) {
        Object value = c.get("rope_scaling");
        if (value == null) return null;
        if (!(value instanceof Map<?, ?> m)) throw new IllegalArgumentException("rope_scaling must be an object, got " + value);
        return (Map<String, Object>) m;
    }

    /** A rope_scaling object's {@code rope_type}, or its older {@code type}, or "default". */
    public static String ropeType(Map<String, Object> s) {
        return s.get("rope_type") != null ? String.valueOf(s.get("rope_type")) : string(s, "type", "default");
    }

    /** {@code eos_token_id} as a list: one id, several, or none. */
    public static List<Integer> eosIds(Object v) {
        if (v instanceof Number n) return List.of(n.intValue());
        if (v instanceof List<?> l) return l.stream().map(o -> ((Number) o).intValue()).toList();
        return List.of();
    }
}
