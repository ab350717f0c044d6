// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/**
 * Python's {@code str} methods ({@code .strip('\n')}, {@code .startswith(..)}, {@code .split(sep)},
 * ...) and {@code dict.get(key, default)}, which chat templates call as Jinja2 lets them.
 * Jinjava would otherwise find only Java's methods, whose names and semantics differ
 * ({@code split} takes a regex there). Placed first in the resolver chain; methods it does not
 * know fall through to Jinjava's bean resolver.
 */
final class JinjaPyStrings extends ELResolver {
    private static final Object NOT_HANDLED = new Object();

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (method == null) return null;
        Object[] args = params == null ? new Object[0] : params;
        Object result;
        if (base instanceof String s) {
            result = stringMethod(s, method.toString(), args);
        } else if (base instanceof Map<?, ?> map && "get".equals(method.toString()) && args.length == 2) {
            result = map.containsKey(args[0]) ? map.get(args[0]) : args[1];
        } else {
            return null;
        }
        if (result != NOT_HANDLED) context.setPropertyResolved(true);
        return result == NOT_HANDLED ? null : result;
    }

    private static Object stringMethod(String s, String name, Object[] a) {
        return switch (name) {
            case "strip" -> strip(s, chars(a), true, true);
            case "lstrip" -> strip(s, chars(a), true, false);
            case "rstrip" -> strip(s, chars(a), false, true);
            case "startswith" -> affix(s, a, true);
            case "endswith" -> affix(s, a, false);
            case "split" -> split(s, arg(a, 0), maxSplit(a));
            case "rsplit" -> rsplit(s, arg(a, 0), maxSplit(a));
            case "splitlines" -> s.lines().toList();
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "capitalize" -> s.isEmpty() ? s
                    : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "replace" -> replace(s, str(a, 0), str(a, 1), a.length > 2 ? ((Number) a[2]).intValue() : -1);
            case "find" -> s.indexOf(str(a, 0));
            case "rfind" -> s.lastIndexOf(str(a, 0));
            case "count" -> count(s, str(a, 0));
            case "join" -> join(s, a.length == 1 ? a[0] : null);
            case "removeprefix" -> s.startsWith(str(a, 0)) ? s.substring(str(a, 0).length()) : s;
            case "removesuffix" -> s.endsWith(str(a, 0)) ? s.substring(0, s.length() - str(a, 0).length()) : s;
            case "isspace" -> !s.isEmpty() && s.codePoints().allMatch(JinjaPyStrings::isSpace);
            case "isdigit" -> !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "islower" -> s.chars().anyMatch(Character::isLowerCase) && s.chars().noneMatch(Character::isUpperCase);
            case "isupper" -> s.chars().anyMatch(Character::isUpperCase) && s.chars().noneMatch(Character::isLowerCase);
            default -> NOT_HANDLED;
        };
    }

    private static String arg(Object[] a, int i) {
        return a.length > i && a[i] != null ? a[i].toString() : null;
    }

    private static String str(Object[] a, int i) {
        String s = arg(a, i);
        if (s == null) throw new IllegalArgumentException("missing string argument " + (i + 1));
        return s;
    }

    private static String chars(Object[] a) { return arg(a, 0); }

    private static int maxSplit(Object[] a) {
        return a.length > 1 && a[1] instanceof Number n ? n.intValue() : -1;
    }

    /** Python's str.isspace for one code point (covers NBSP and the separators Java's isWhitespace omits). */
    private static boolean isSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
    }

    private static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end && strippable(s.charAt(start), chars)) start++;
        while (right && end > start && strippable(s.charAt(end - 1), chars)) end--;
        return s.substring(start, end);
    }

    private static boolean strippable(char c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    /** startswith/endswith with a string or a tuple (list) of candidates, and optional start/end. */
    private static boolean affix(String s, Object[] a, boolean prefix) {
        if (a.length == 0) throw new IllegalArgumentException((prefix ? "startswith" : "endswith") + " takes an argument");
        String target = s;
        if (a.length > 1) {
            int from = index(a[1], s.length());
            int to = a.length > 2 && a[2] != null ? index(a[2], s.length()) : s.length();
            target = from <= to ? s.substring(from, to) : "";
        }
        List<String> candidates = new ArrayList<>();
        if (a[0] instanceof Iterable<?> it) {
            for (Object o : it) candidates.add(String.valueOf(o));
        } else {
            candidates.add(String.valueOf(a[0]));
        }
        for (String c : candidates) {
            if (prefix ? target.startsWith(c) : target.endsWith(c)) return true;
        }
        return false;
    }

    private static int index(Object o, int length) {
        int i = ((Number) o).intValue();
        if (i < 0) i += length;
        return Math.clamp(i, 0, length);
    }

    private static List<String> split(String s, String sep, int max) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0;
            int n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) i++;
                if (i >= n) break;
                if (max >= 0 && out.size() == max) {
                    out.add(strip(s.substring(i), null, false, true));
                    break;
                }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) j++;
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        while (max < 0 || out.size() < max) {
            int at = s.indexOf(sep, from);
            if (at < 0) break;
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    private static List<String> rsplit(String s, String sep, int max) {
        if (max < 0 || sep == null) {
            if (max < 0) return split(s, sep, -1);
            // Whitespace rsplit with a limit: split on the reversed string and reverse back.
            List<String> reversed = split(new StringBuilder(s).reverse().toString(), null, max);
            List<String> out = new ArrayList<>();
            for (int i = reversed.size() - 1; i >= 0; i--) out.add(new StringBuilder(reversed.get(i)).reverse().toString());
            return out;
        }
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        List<String> out = new ArrayList<>();
        int end = s.length();
        while (out.size() < max) {
            int at = s.lastIndexOf(sep, end - sep.length());
            if (at < 0) break;
            out.addFirst(s.substring(at + sep.length(), end));
            end = at;
        }
        out.addFirst(s.substring(0, end));
        return out;
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(previousCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
            previousCased = Character.isLetter(c);
        }
        return out.toString();
    }

    private static String replace(String s, String old, String replacement, int count) {
        if (count < 0 || old.isEmpty()) return s.replace(old, replacement);
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int done = 0; done < count; done++) {
            int at = s.indexOf(old, from);
            if (at < 0) break;
            out.append(s, from, at).append(replacement);
            from = at + old.length();
        }
        return out.append(s, from, s.length()).toString();
    }

    private static int count(String s, String sub) {
        if (sub.isEmpty()) return s.codePointCount(0, s.length()) + 1;
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) n++;
        return n;
    }

    private static String join(String sep, Object items) {
        if (items == null) throw new IllegalArgumentException("join takes one iterable argument");
        Iterator<?> it = items instanceof Iterable<?> i ? i.iterator()
                : items instanceof Object[] arr ? List.of(arr).iterator()
                : items instanceof CharSequence cs ? cs.codePoints().mapToObj(Character::toString).iterator()
                : null;
        if (it == null) throw new IllegalArgumentException("can only join an iterable");
        StringBuilder out = new StringBuilder();
        for (boolean first = true; it.hasNext(); first = false) {
            if (!first) out.append(sep);
            out.append(it.next());
        }
        return out.toString();
    }

    // Property access is left to the other resolvers.

    @Override
    public Object getValue(ELContext context, Object base, Object property) { return null; }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) { return null; }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) { return true; }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) { return null; }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) { return null; }
}
