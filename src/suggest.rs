//! "Did you mean …?": the nearest valid word to a misspelled one.

/// The most similar candidate to `word`, if one is close enough to be a
/// plausible typo: within a third of the word's length in Damerau-
/// Levenshtein distance (at least one edit), compared without case.
pub fn nearest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word = word.to_lowercase();
    let budget = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = strsim::damerau_levenshtein(&word, &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= budget)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_a_close_word() {
        assert_eq!(
            nearest("stagign", ["staging", "production"]),
            Some("staging")
        );
        assert_eq!(
            nearest("PRODUCTON", ["staging", "production"]),
            Some("production")
        );
    }

    #[test]
    fn ignores_far_words() {
        assert_eq!(nearest("banana", ["staging", "production"]), None);
        assert_eq!(nearest("x", Vec::<&str>::new()), None);
    }
}
