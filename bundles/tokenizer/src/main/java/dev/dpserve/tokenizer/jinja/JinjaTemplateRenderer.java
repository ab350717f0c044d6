// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.TruthyTypeConverter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.dpserve.api.tokenizer.ChatTemplateRenderer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;
import jinjava.de.odysseus.el.ExpressionFactoryImpl;
import jinjava.de.odysseus.el.tree.TreeStore;
import jinjava.de.odysseus.el.tree.impl.Builder.Feature;
import jinjava.de.odysseus.el.tree.impl.Cache;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ExpressionFactory;
import org.osgi.service.component.annotations.Component;

/**
 * Renders Hugging Face chat templates with Jinjava, configured the way transformers configures
 * Jinja2 for {@code apply_chat_template}: {@code trim_blocks} and {@code lstrip_blocks}, no
 * trailing newline kept (see {@link #lexerOptions}), dict iteration over keys, and the globals
 * {@code raise_exception} and {@code strftime_now}. Python string methods, Jinja2's operator
 * precedence, {@code seq[::step]} and Python-spaced {@code tojson} are added on top (see
 * {@link JinjaPyStrings}, {@link JinjaSyntax}, {@link JinjaToJson}).
 *
 * <p>Thread-safe: Jinjava makes a fresh interpreter per render.
 */
@Component(service = ChatTemplateRenderer.class)
public final class JinjaTemplateRenderer implements ChatTemplateRenderer {
    private static final int EXPRESSION_CACHE_SIZE = 1000;
    private static final Pattern LINE_START_BEFORE_TAG = Pattern.compile("(?m)^[ \\t]+(?=\\{%(?!\\+)|\\{#)");

    /**
     * Jinjava's fixes of its old deviations from Jinja2, except "whitespace required within tokens",
     * which would stop {@code {%-} from being recognised, and "natural operator precedence", which
     * reads {@code not x is defined} as {@code (not x) is defined} ({@link JinjaSyntax} fixes
     * precedence where templates need it).
     */
    private static final LegacyOverrides JINJA2_COMPATIBLE = LegacyOverrides.newBuilder()
            .withEvaluateMapKeys(true)
            .withIterateOverMapKeys(true)
            .withUsePyishObjectMapper(true)
            .withParseWhitespaceControlStrictly(true)
            .withAllowAdjacentTextNodes(true)
            .withUseTrimmingForNotesAndExpressions(true)
            .withKeepNullableLoopValues(true)
            .withHandleBackslashInQuotesOnly(true)
            .build();

    private final Jinjava jinjava;

    public JinjaTemplateRenderer() {
        // Jinjava's constructor loads its expression parsers by class name through the context
        // class loader, which under OSGi is not this bundle's.
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        thread.setContextClassLoader(JinjaTemplateRenderer.class.getClassLoader());
        try {
            jinjava = createJinjava();
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    private static Jinjava createJinjava() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new JinjaPyStrings());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                // lstrip_blocks and the trailing newline are done on the source, see lexerOptions()
                .withLstripBlocks(false)
                .withKeepTrailingNewline(true)
                .withLegacyOverrides(JINJA2_COMPATIBLE)
                .withElResolver(resolver)
                .build();
        ExpressionFactory expressions = new ExpressionFactoryImpl(
                new TreeStore(new JinjaSyntax(Feature.METHOD_INVOCATIONS, Feature.VARARGS),
                        new Cache(EXPRESSION_CACHE_SIZE)),
                new TruthyTypeConverter());
        Jinjava jinjava = new Jinjava(config) {
            @Override
            public ExpressionFactory getExpressionFactory() { return expressions; }
        };
        jinjava.getGlobalContext().registerFilter(new JinjaToJson());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                JinjaFunctions.class, "raiseException", Object.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                JinjaFunctions.class, "strftimeNow", String.class));
        return jinjava;
    }

    @Override
    public String render(String template, List<Map<String, Object>> messages, boolean addGenerationPrompt,
                         Map<String, Object> variables) {
        Objects.requireNonNull(template, "template");
        Map<String, Object> bindings = new HashMap<>();
        if (variables != null) bindings.putAll(variables);
        bindings.put("messages", messages);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = jinjava.renderForResult(lexerOptions(template), bindings);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) throw failure(error);
        }
        return result.getOutput();
    }

    /**
     * Jinja2's {@code lstrip_blocks} and {@code keep_trailing_newline=False} applied to the source,
     * because Jinjava's versions differ: it strips spaces before every block tag, even mid-line
     * ({@code {{ x }} {% if %}} loses its space), and drops a trailing newline from the output
     * rather than from the source. Jinja2 strips only spaces and tabs that start a line before
     * {@code {%} or {@code {#} (not {@code {%+}), and removes one final newline of the source.
     */
    static String lexerOptions(String template) {
        String source = LINE_START_BEFORE_TAG.matcher(template).replaceAll("");
        if (source.endsWith("\r\n")) return source.substring(0, source.length() - 2);
        if (source.endsWith("\n") || source.endsWith("\r")) return source.substring(0, source.length() - 1);
        return source;
    }

    /** The template's own message for raise_exception, else Jinjava's description with the line. */
    private static IllegalArgumentException failure(TemplateError error) {
        for (Throwable t = error.getException(); t != null; t = t.getCause()) {
            if (t instanceof JinjaFunctions.TemplateRaisedException raised) {
                return new IllegalArgumentException(raised.getMessage());
            }
        }
        return new IllegalArgumentException("chat template error at line " + error.getLineno() + ": "
                + error.getMessage(), error.getException());
    }
}
