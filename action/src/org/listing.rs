//! Lists an organisation's repositories through the GitHub REST API
//! (`GET /orgs/{org}/repos`, 100 a page, serially as GitHub asks of
//! clients), waiting out rate limits the way `rate_limit` decides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::rate_limit::{self, Answer, Next};
use crate::github::describe;
use crate::Error;

/// The fields of GitHub's repository object a sweep needs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Repository {
    pub full_name: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub disabled: bool,
    /// When the last push landed: a state file's row for the repository
    /// is reused only while this is unchanged.
    #[serde(default)]
    pub pushed_at: Option<String>,
    pub clone_url: String,
    #[serde(default)]
    pub html_url: String,
}

/// Where and how to list.
pub struct Listing<'a> {
    pub api: &'a str,
    pub token: Option<&'a str>,
    pub organisation: &'a str,
    pub max_wait: Duration,
}

const PAGE: usize = 100;

impl Listing<'_> {
    /// Every repository of the organisation, in GitHub's order.
    pub fn list(&self) -> Result<Vec<Repository>, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::GitHub(e.to_string()))?;
        runtime.block_on(self.list_pages())
    }

    async fn list_pages(&self) -> Result<Vec<Repository>, Error> {
        let gh = self.client()?;
        let mut all = Vec::new();
        for page in 1u32.. {
            let path = format!(
                "/orgs/{}/repos?type=all&sort=full_name&per_page={PAGE}&page={page}",
                self.organisation
            );
            let (repos, answer) = self.get_page(&gh, &path).await?;
            let last = repos.len() < PAGE;
            all.extend(repos);
            if last {
                break;
            }
            if let Some(wait) = rate_limit::before_next_request(&answer, now()) {
                if wait > self.max_wait {
                    return Err(Error::GitHub(format!(
                        "listing the repositories of {}: the primary rate limit resets in {}s, more than --max-rate-limit-wait ({}s); run again later (with --state the sweep resumes where it stopped)",
                        self.organisation,
                        wait.as_secs(),
                        self.max_wait.as_secs()
                    )));
                }
                self.wait(wait, "the primary rate limit is spent").await?;
            }
        }
        Ok(all)
    }

    fn client(&self) -> Result<octocrab::Octocrab, Error> {
        let builder = octocrab::Octocrab::builder()
            .base_uri(self.api)
            .map_err(|e| Error::Usage(format!("bad GitHub API URL {}: {e}", self.api)))?;
        let builder = match self.token {
            Some(token) => builder.personal_token(token.to_string()),
            None => builder,
        };
        builder.build().map_err(|e| Error::GitHub(describe(&e)))
    }

    /// One page, asked again for as long as rate limits say to.
    async fn get_page(
        &self,
        gh: &octocrab::Octocrab,
        path: &str,
    ) -> Result<(Vec<Repository>, Answer), Error> {
        let failed = |why: String| {
            Error::GitHub(format!(
                "listing the repositories of {}: {why}",
                self.organisation
            ))
        };
        for attempt in 0.. {
            let response = gh._get(path).await.map_err(|e| failed(describe(&e)))?;
            let mut answer = answer_of(&response);
            let body = gh
                .body_to_string(response)
                .await
                .map_err(|e| failed(describe(&e)))?;
            answer.says_rate_limit = body.to_ascii_lowercase().contains("rate limit");
            match rate_limit::next(&answer, attempt, now(), self.max_wait) {
                Next::Use => {
                    let repos = serde_json::from_str(&body)
                        .map_err(|e| failed(format!("the page is no repository list: {e}")))?;
                    return Ok((repos, answer));
                }
                Next::Retry(wait) => {
                    self.wait(wait, &format!("GitHub answered {}", answer.status))
                        .await?
                }
                Next::GiveUp(why) if answer.status == 404 => {
                    return Err(failed(format!(
                        "{why}: is {} an organisation the token can see?",
                        self.organisation
                    )))
                }
                Next::GiveUp(why) => return Err(failed(why)),
            }
        }
        unreachable!("the loop returns")
    }

    async fn wait(&self, wait: Duration, why: &str) -> Result<(), Error> {
        eprintln!(
            "keyguard: {why}: waiting {}s as GitHub's rate limit asks",
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

fn answer_of<B>(response: &http::Response<B>) -> Answer {
    let number = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Answer {
        status: response.status().as_u16(),
        retry_after: number("retry-after"),
        remaining: number("x-ratelimit-remaining"),
        reset: number("x-ratelimit-reset"),
        says_rate_limit: false,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
