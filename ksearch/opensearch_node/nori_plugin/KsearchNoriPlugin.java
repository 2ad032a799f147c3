package dev.ksearch.opensearch.nori;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.ko.KoreanAnalyzer;
import org.apache.lucene.analysis.ko.KoreanNumberFilter;
import org.apache.lucene.analysis.ko.KoreanPartOfSpeechStopFilter;
import org.apache.lucene.analysis.ko.KoreanReadingFormFilter;
import org.apache.lucene.analysis.ko.KoreanTokenizer;
import org.apache.lucene.analysis.ko.POS;
import org.apache.lucene.analysis.ko.dict.UserDictionary;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.opensearch.index.analysis.AbstractTokenFilterFactory;
import org.opensearch.index.analysis.AbstractTokenizerFactory;
import org.opensearch.index.analysis.Analysis;
import org.opensearch.index.analysis.AnalyzerProvider;
import org.opensearch.index.analysis.TokenFilterFactory;
import org.opensearch.index.analysis.TokenizerFactory;
import org.opensearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.opensearch.plugins.AnalysisPlugin;
import org.opensearch.plugins.Plugin;

public class KsearchNoriPlugin extends Plugin implements AnalysisPlugin {

    static KoreanTokenizer.DecompoundMode decompoundMode(Settings s) {
        String mode = s.get("decompound_mode", "discard");
        return KoreanTokenizer.DecompoundMode.valueOf(mode.toUpperCase(Locale.ROOT));
    }

    static UserDictionary userDictionary(Environment env, Settings s) throws IOException {
        List<String> rules = s.getAsList("user_dictionary_rules");
        String path = s.get("user_dictionary");
        if (path != null && !rules.isEmpty()) {
            throw new IllegalArgumentException("set user_dictionary or user_dictionary_rules, not both");
        }
        Reader reader;
        if (path != null) {
            // Analysis resolves the path under the config folder (Environment#configFile in 2.x, configDir in 3.x)
            reader = Analysis.getReaderFromFile(env, s, "user_dictionary");
        } else if (!rules.isEmpty()) {
            reader = new StringReader(String.join("\n", rules));
        } else {
            return null;
        }
        try (Reader r = reader) {
            return UserDictionary.open(r);
        }
    }

    static Set<POS.Tag> stopTags(Settings s) {
        List<String> tags = s.getAsList("stoptags", null);
        if (tags == null) {
            return KoreanPartOfSpeechStopFilter.DEFAULT_STOP_TAGS;
        }
        Set<POS.Tag> out = new HashSet<>();
        for (String t : tags) {
            out.add(POS.resolveTag(t));
        }
        return out;
    }

    static final class Tokenizers extends AbstractTokenizerFactory {
        private final UserDictionary dict;
        private final KoreanTokenizer.DecompoundMode mode;
        private final boolean unknownUnigrams;
        private final boolean discardPunctuation;

        Tokenizers(IndexSettings is, Environment env, String name, Settings s) throws IOException {
            super(is, s, name);
            this.dict = userDictionary(env, s);
            this.mode = decompoundMode(s);
            this.unknownUnigrams = s.getAsBoolean("output_unknown_unigrams", false);
            this.discardPunctuation = s.getAsBoolean("discard_punctuation", true);
        }

        @Override
        public Tokenizer create() {
            return new KoreanTokenizer(
                TokenStream.DEFAULT_TOKEN_ATTRIBUTE_FACTORY, dict, mode, unknownUnigrams, discardPunctuation);
        }
    }

    static final class Filters extends AbstractTokenFilterFactory {
        private final Function<TokenStream, TokenStream> fn;

        Filters(IndexSettings is, String name, Settings s, Function<TokenStream, TokenStream> fn) {
            super(is, name, s);
            this.fn = fn;
        }

        @Override
        public TokenStream create(TokenStream in) {
            return fn.apply(in);
        }
    }

    static final class Analyzers extends AbstractIndexAnalyzerProvider<KoreanAnalyzer> {
        private final KoreanAnalyzer analyzer;

        Analyzers(IndexSettings is, Environment env, String name, Settings s) throws IOException {
            super(is, name, s);
            this.analyzer = new KoreanAnalyzer(
                userDictionary(env, s), decompoundMode(s), stopTags(s), s.getAsBoolean("output_unknown_unigrams", false));
        }

        @Override
        public KoreanAnalyzer get() {
            return analyzer;
        }
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        Map<String, AnalysisProvider<TokenizerFactory>> m = new HashMap<>();
        m.put("nori_tokenizer", Tokenizers::new);
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        Map<String, AnalysisProvider<TokenFilterFactory>> m = new HashMap<>();
        m.put("nori_part_of_speech", (is, env, name, s) -> {
            Set<POS.Tag> tags = stopTags(s);
            return new Filters(is, name, s, in -> new KoreanPartOfSpeechStopFilter(in, tags));
        });
        m.put("nori_readingform", (is, env, name, s) -> new Filters(is, name, s, KoreanReadingFormFilter::new));
        m.put("nori_number", (is, env, name, s) -> new Filters(is, name, s, KoreanNumberFilter::new));
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> m = new HashMap<>();
        m.put("nori", Analyzers::new);
        return m;
    }
}
