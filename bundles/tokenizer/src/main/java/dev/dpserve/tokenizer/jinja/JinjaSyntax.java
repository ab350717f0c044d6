// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import com.hubspot.jinjava.el.ExtendedSyntaxBuilder;
import com.hubspot.jinjava.el.ext.AstRangeBracket;
import com.hubspot.jinjava.el.ext.ExtendedParser;
import com.hubspot.jinjava.el.ext.NamedParameterOperator;
import com.hubspot.jinjava.objects.collections.PyList;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jinjava.de.odysseus.el.tree.Bindings;
import jinjava.de.odysseus.el.tree.impl.Parser;
import jinjava.de.odysseus.el.tree.impl.Scanner;
import jinjava.de.odysseus.el.tree.impl.ast.AstNode;
import jinjava.de.odysseus.el.tree.impl.ast.AstNull;
import jinjava.de.odysseus.el.tree.impl.ast.AstUnary;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;

/**
 * Jinjava's expression syntax, brought closer to Jinja2 where chat templates notice:
 * <ul>
 * <li>the stepped whole-sequence slice {@code seq[::step]} (Qwen's templates walk
 *     {@code messages[::-1]}); Jinjava parses {@code [a:b]} but stops at a second colon, and
 *     {@code [a:b:c]} with bounds stays unsupported;</li>
 * <li>keyword arguments take a whole expression, {@code namespace(i=messages|length - 1)}; Jinjava
 *     binds {@code =} like {@code +}, so the {@code - 1} was applied to the parameter;</li>
 * <li>{@code not} binds looser than comparisons, {@code not a == b} is {@code not (a == b)}.</li>
 * </ul>
 */
final class JinjaSyntax extends ExtendedSyntaxBuilder {
    private static final long serialVersionUID = 1L;

    /** {@code name=value} at the lowest (or) level, so the value is a full operand. */
    private static final Parser.ExtensionHandler KEYWORD_ARGUMENT =
            new Parser.ExtensionHandler(Parser.ExtensionPoint.OR) {
                @Override
                public AstNode createAstNode(AstNode... children) {
                    return NamedParameterOperator.HANDLER.createAstNode(children);
                }
            };

    JinjaSyntax(Feature... features) {
        super(features);
    }

    @Override
    protected Parser createParser(String expression) {
        return new Jinja2Parser(this, expression);
    }

    private static final class Jinja2Parser extends ExtendedParser {
        /** Stands for the empty start of {@code [::step]}; compared by identity. */
        private final AstNode wholeSequence = new AstNull();

        Jinja2Parser(JinjaSyntax builder, String input) {
            super(builder, input);
            putExtensionHandler(NamedParameterOperator.TOKEN, KEYWORD_ARGUMENT);
        }

        @Override
        protected AstNode unary(boolean required) throws Scanner.ScanException, ParseException {
            if (getToken().getSymbol() != Scanner.Symbol.NOT) return super.unary(required);
            consumeToken();
            return createAstUnary(eq(true), AstUnary.NOT);
        }

        /**
         * Inside {@code [}, the parser asks for the start bound; at {@code ::} there is none, so the
         * first colon is taken here and the parser reads the step where it expects the end bound.
         */
        @Override
        protected AstNode expr(boolean required) throws Scanner.ScanException, ParseException {
            if (!required && isColon(getToken()) && isColon(lookahead(0))) {
                consumeToken();
                return wholeSequence;
            }
            return super.expr(required);
        }

        private static boolean isColon(Scanner.Token token) {
            return token.getSymbol() == Scanner.Symbol.COLON && ":".equals(token.getImage());
        }

        @Override
        protected AstRangeBracket createAstRangeBracket(AstNode base, AstNode start, AstNode end, boolean lvalue,
                                                        boolean strict) {
            if (start != wholeSequence) return super.createAstRangeBracket(base, start, end, lvalue, strict);
            return new SteppedSlice(base, end, lvalue, strict, context.isEnabled(Feature.IGNORE_RETURN_TYPE));
        }
    }

    /** {@code base[::step]}: strings by code point, sequences as a new list. */
    private static final class SteppedSlice extends AstRangeBracket {
        SteppedSlice(AstNode base, AstNode step, boolean lvalue, boolean strict, boolean ignoreReturnType) {
            super(base, null, step, lvalue, strict, ignoreReturnType);
        }

        @Override
        public Object eval(Bindings bindings, ELContext context) {
            Object base = prefix.eval(bindings, context);
            Object stepValue = rangeMax == null ? null : rangeMax.eval(bindings, context);
            int step = stepValue == null ? 1 : ((Number) stepValue).intValue();
            if (step == 0) throw new ELException("slice step cannot be zero");
            if (base instanceof String s) {
                int[] cps = s.codePoints().toArray();
                StringBuilder out = new StringBuilder();
                for (int i : indices(cps.length, step)) out.appendCodePoint(cps[i]);
                return out.toString();
            }
            List<?> items = base instanceof List<?> l ? l
                    : base instanceof Object[] arr ? Arrays.asList(arr)
                    : base instanceof Iterable<?> it ? toList(it) : null;
            if (items == null) throw new ELException("Property " + prefix + " is not a sequence.");
            List<Object> out = new ArrayList<>();
            for (int i : indices(items.size(), step)) out.add(items.get(i));
            return new PyList(out);
        }

        private static int[] indices(int length, int step) {
            int count = (length + Math.abs(step) - 1) / Math.abs(step);
            int[] out = new int[count];
            for (int k = 0; k < count; k++) out[k] = step > 0 ? k * step : length - 1 + k * step;
            return out;
        }

        private static List<Object> toList(Iterable<?> it) {
            List<Object> out = new ArrayList<>();
            it.forEach(out::add);
            return out;
        }

        @Override
        public String toString() { return "[::]"; }
    }
}
