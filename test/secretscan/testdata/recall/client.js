// Slack and GitHub clients for the release bot.
const { WebClient } = require("@slack/web-api");
const { Octokit } = require("@octokit/rest");

const slack = new WebClient("xoxb-239891868269-6344701773240-UXD9nJrMI6ZTM5aQY6LiBvpC");
const octokit = new Octokit({ auth: "ghp_5BbwxvWwVmgjVkKkOB8dZ9MBXhFAJn0jN8yZ" });

const config = {
  apiKey: "AIzaYp_fpm-mDfl6l62JpdBR-fNQpIwqZBqwwG-",
  authDomain: "release-bot.firebaseapp.com",
  projectId: "release-bot",
};

module.exports = { slack, octokit, config };
