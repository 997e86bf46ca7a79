//! Chat commands, parsed case-insensitively from trimmed text.

/// What a subscriber asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `subscribe` or `start`.
    Subscribe,
    /// `stop` or `unsubscribe`.
    Unsubscribe,
    Help,
    /// `topics`: list topics and this sender's choices.
    Topics,
    /// `stop <topic>` / `unsubscribe <topic>`.
    TopicOff(String),
    /// `start <topic>` / `subscribe <topic>`.
    TopicOn(String),
    /// Anything else.
    Unknown,
}

impl Command {
    pub fn parse(text: &str) -> Self {
        let lowered = text.trim().to_lowercase();
        let mut words = lowered.split_whitespace();
        let (Some(verb), topic, None) = (words.next(), words.next(), words.next()) else {
            return Self::Unknown;
        };
        match (verb, topic) {
            ("subscribe" | "start", None) => Self::Subscribe,
            ("stop" | "unsubscribe", None) => Self::Unsubscribe,
            ("help", None) => Self::Help,
            ("topics", None) => Self::Topics,
            ("stop" | "unsubscribe", Some(topic)) => Self::TopicOff(topic.to_owned()),
            ("start" | "subscribe", Some(topic)) => Self::TopicOn(topic.to_owned()),
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Command::{self, *};

    #[test]
    fn commands_are_case_insensitive_and_trimmed() {
        assert_eq!(Command::parse("  SUBSCRIBE \n"), Subscribe);
        assert_eq!(Command::parse("Start"), Subscribe);
        assert_eq!(Command::parse("stop"), Unsubscribe);
        assert_eq!(Command::parse("UnSubscribe"), Unsubscribe);
        assert_eq!(Command::parse("help"), Help);
        assert_eq!(Command::parse("Topics"), Topics);
        assert_eq!(Command::parse("STOP Security"), TopicOff("security".into()));
        assert_eq!(Command::parse("start  news"), TopicOn("news".into()));
        assert_eq!(Command::parse("please stop now"), Unknown);
        assert_eq!(Command::parse(""), Unknown);
        assert_eq!(Command::parse("gm"), Unknown);
    }
}
