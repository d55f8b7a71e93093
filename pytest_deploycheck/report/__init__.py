"""Files written for people and CI: Allure files, GitHub output, the chart, HTML."""
