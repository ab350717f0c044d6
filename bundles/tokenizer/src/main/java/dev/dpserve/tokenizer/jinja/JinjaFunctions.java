// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import java.time.ZonedDateTime;
import java.util.Locale;

/**
 * The global functions transformers gives chat templates. Public only because Jinjava binds
 * functions by reflection; the package is private to the bundle.
 */
public final class JinjaFunctions {
    private JinjaFunctions() {
    }

    /** {@code raise_exception(message)}: aborts the render; the renderer reports the message as is. */
    public static Object raiseException(Object message) {
        throw new TemplateRaisedException(String.valueOf(message));
    }

    /** {@code strftime_now(format)}: local time now, formatted with Python's strftime directives. */
    public static String strftimeNow(String format) {
        return StrftimeFormatter.format(ZonedDateTime.now(), format, Locale.ENGLISH);
    }

    /** What {@code raise_exception} throws; unwrapped from Jinjava's error list by the renderer. */
    static final class TemplateRaisedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TemplateRaisedException(String message) {
            super(message, null, false, false);
        }
    }
}
