//! One pull request comment per PR, kept current through the GitHub API:
//! created on the first run with findings, updated on later runs (never a
//! second one), deleted once the PR is clean.

use super::describe;
use crate::report::{markdown_summary, Report};
use crate::Error;

const MARKER: &str = crate::report::COMMENT_MARKER;

pub fn sync_comment(
    api: &str,
    token: &str,
    repo: &str,
    pr: u64,
    report: &Report,
) -> Result<(), Error> {
    let (owner, name) = repo
        .split_once('/')
        .ok_or_else(|| Error::Usage(format!("GITHUB_REPOSITORY {repo:?} is not owner/name")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::GitHub(e.to_string()))?;
    runtime.block_on(async {
        let gh = octocrab::Octocrab::builder()
            .base_uri(api)
            .map_err(|e| Error::GitHub(format!("bad GITHUB_API_URL {api}: {e}")))?
            .personal_token(token.to_string())
            .build()
            .map_err(|e| Error::GitHub(e.to_string()))?;
        let issues = gh.issues(owner, name);
        let existing = find_own_comment(&issues, pr).await?;
        // Added waivers keep the comment: reviewers need to see them.
        let nothing_to_say = report.is_clean() && report.added_waivers.is_empty();
        let body = markdown_summary(report);
        match (existing, nothing_to_say) {
            (Some(id), true) => issues
                .delete_comment(id)
                .await
                .map_err(|e| api_error(format!("deleting comment {id}"), &e))?,
            (Some(id), false) => {
                issues
                    .update_comment(id, body)
                    .await
                    .map_err(|e| api_error(format!("updating comment {id}"), &e))?;
            }
            (None, false) => {
                issues
                    .create_comment(pr, body)
                    .await
                    .map_err(|e| api_error(format!("commenting on #{pr}"), &e))?;
            }
            (None, true) => {}
        }
        Ok(())
    })
}

/// keyguard's comment on the pull request, if an earlier run left one.
async fn find_own_comment(
    issues: &octocrab::issues::IssueHandler<'_>,
    pr: u64,
) -> Result<Option<octocrab::models::CommentId>, Error> {
    for page in 1u32.. {
        let comments = issues
            .list_comments(pr)
            .per_page(100)
            .page(page)
            .send()
            .await
            .map_err(|e| api_error(format!("listing comments on #{pr}"), &e))?;
        let count = comments.items.len();
        if let Some(c) = comments
            .items
            .into_iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(MARKER)))
        {
            return Ok(Some(c.id));
        }
        if count < 100 {
            break;
        }
    }
    Ok(None)
}

/// An API error, forbidden writes apart (the caller may carry on).
fn api_error(doing: String, e: &octocrab::Error) -> Error {
    let text = format!("{doing}: {}", describe(e));
    match e {
        octocrab::Error::GitHub { source, .. } if source.status_code.as_u16() == 403 => {
            Error::GitHubForbidden(text)
        }
        _ => Error::GitHub(text),
    }
}
