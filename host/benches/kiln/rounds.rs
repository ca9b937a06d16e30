//! A ratio taken in alternating rounds: this machine's speed swings by up to 2× within
//! seconds, so two figures measured seconds apart make a ratio that moves with the
//! machine. Measured in turns within short rounds, each round's ratio holds still; the
//! median round is the figure, with the quartiles for its spread.

/// The median round of a set, by its ratio.
pub(crate) struct MedianRound {
    /// The round's two figures, as measured.
    pub(crate) pair: (f64, f64),
    pub(crate) ratio: f64,
    /// The ratios of the rounds at the first and third quartile.
    pub(crate) quartiles: (f64, f64),
}

/// The median of `rounds` (pairs of figures measured in turn), ordered by `ratio`.
pub(crate) fn median_round(mut rounds: Vec<(f64, f64)>, ratio: fn(f64, f64) -> f64) -> MedianRound {
    assert!(!rounds.is_empty(), "no rounds to take a median of");
    rounds.sort_by(|a, b| ratio(a.0, a.1).total_cmp(&ratio(b.0, b.1)));
    let at = |index: usize| ratio(rounds[index].0, rounds[index].1);
    let count = rounds.len();
    MedianRound {
        pair: rounds[count / 2],
        ratio: at(count / 2),
        quartiles: (at(count / 4), at(count * 3 / 4)),
    }
}
