// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Typed, validating access to the fields of a JSON request body. A JSON {@code null} counts as
 * absent (pydantic's {@code Optional[...] = default}). Type errors are 400s naming the field.
 * Integers accept integral floats ({@code 16.0}) as pydantic's lax mode does; strings are never
 * coerced to numbers.
 */
final class RequestFields {
    private final ObjectNode node;

    private RequestFields(ObjectNode node) { this.node = node; }

    static RequestFields parse(String body) {
        JsonNode tree;
        try {
            tree = Json.MAPPER.readTree(body == null ? "" : body);
        } catch (JacksonException e) {
            throw OpenAiError.badRequest("Invalid JSON body: " + e.getOriginalMessage(), null);
        }
        if (tree == null || tree.isMissingNode()) {
            throw OpenAiError.badRequest("Invalid JSON body: the request body is empty", null);
        }
        if (!(tree instanceof ObjectNode object)) {
            throw OpenAiError.badRequest("Input should be a valid dictionary or object, got " + describe(tree), null);
        }
        return new RequestFields(object);
    }

    /** Present and not null. */
    boolean has(String name) {
        JsonNode v = node.get(name);
        return v != null && !v.isNull();
    }

    /** Present with an explicit JSON null. */
    boolean isExplicitNull(String name) {
        JsonNode v = node.get(name);
        return v != null && v.isNull();
    }

    JsonNode raw(String name) {
        JsonNode v = node.get(name);
        return v == null || v.isNull() ? null : v;
    }

    Set<String> names() {
        Set<String> names = new TreeSet<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    String string(String name, String dflt) {
        JsonNode v = raw(name);
        if (v == null) return dflt;
        if (!v.isTextual()) throw typeError(name, "a valid string", v);
        return v.textValue();
    }

    boolean bool(String name, boolean dflt) {
        JsonNode v = raw(name);
        if (v == null) return dflt;
        if (!v.isBoolean()) throw typeError(name, "a valid boolean", v);
        return v.booleanValue();
    }

    double number(String name, double dflt) {
        JsonNode v = raw(name);
        if (v == null) return dflt;
        if (!v.isNumber()) throw typeError(name, "a valid number", v);
        return v.doubleValue();
    }

    /** Null when absent. */
    Double number(String name) {
        return has(name) ? number(name, 0) : null;
    }

    int integer(String name, int dflt) {
        JsonNode v = raw(name);
        return v == null ? dflt : toInt(name, v);
    }

    /** Null when absent. */
    Integer integer(String name) {
        JsonNode v = raw(name);
        return v == null ? null : toInt(name, v);
    }

    /** Null when absent. */
    Long longInteger(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (v.isIntegralNumber() && v.canConvertToLong()) return v.longValue();
        if (v.isFloatingPointNumber() && isIntegral(v.doubleValue()) && Math.abs(v.doubleValue()) < 0x1p63) {
            return (long) v.doubleValue();
        }
        throw typeError(name, "a valid 64-bit integer", v);
    }

    /** A list of integers; null when absent. */
    List<Integer> integerList(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!v.isArray()) throw typeError(name, "a valid list of integers", v);
        List<Integer> out = new ArrayList<>(v.size());
        for (JsonNode e : v) out.add(toInt(name, e));
        return out;
    }

    /** An object; null when absent. */
    RequestFields object(String name) {
        JsonNode v = raw(name);
        if (v == null) return null;
        if (!(v instanceof ObjectNode o)) throw typeError(name, "a valid dictionary or object", v);
        return new RequestFields(o);
    }

    static int toInt(String name, JsonNode v) {
        if (v.isIntegralNumber() && v.canConvertToInt()) return v.intValue();
        if (v.isFloatingPointNumber() && isIntegral(v.doubleValue())
                && v.doubleValue() >= Integer.MIN_VALUE && v.doubleValue() <= Integer.MAX_VALUE) {
            return (int) v.doubleValue();
        }
        throw typeError(name, v.isIntegralNumber() ? "a valid 32-bit integer" : "a valid integer", v);
    }

    static boolean isIntegral(double d) {
        return Double.isFinite(d) && d == Math.rint(d);
    }

    static OpenAiError typeError(String name, String expected, JsonNode got) {
        return OpenAiError.badRequest("Invalid value for '" + name + "': input should be " + expected + ", got "
                + describe(got), name);
    }

    private static String describe(JsonNode v) {
        String text = v.toString();
        if (text.length() > 40) text = text.substring(0, 40) + "...";
        return v.getNodeType().name().toLowerCase() + " " + text;
    }
}
