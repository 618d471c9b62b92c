FROM node:20-alpine
ENV NODE_ENV=production
# want
ENV DB_PASSWORD=hunter2 PORT=8080
# want
ENV GITHUB_TOKEN ghp_exampletokenvalue
